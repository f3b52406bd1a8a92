//! The processor contracts of an organisation (Art. 28): those binding its processors,
//! each with its Art. 28 flag and its sub-processing chain shown as a chain (the
//! controller, its processor, the processor's sub-processors…), and the form adding one
//! through `ent_platform::contracts`, after the RGPD domain's write check. A contract's
//! page edits it and its sub-processors (added with their Art. 28 facts, removed), each
//! change under the contract's version. A sub-processor is a link of the processor's own
//! chain, which its other clients see too: it is added from a contract's page only by
//! whoever keeps the processor's registers, and removed by them or, when it was declared
//! from that contract, by whoever keeps the contract's client's registers.

use super::{base, controls, label_in, shell, target};
use crate::auth::caller;
use crate::forms::{stale_version, Fields, On, Reply};
use crate::page::{self, Notice, PageError};
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Form;
use ent_groupements::groupements::documents::{self, StoredDocument};
use ent_groupements::groupements::{self as gm, routes as gm_routes};
use ent_kernel::clock::french_date;
use ent_kernel::error::{precondition_failed, Problem, ProblemKind};
use ent_kernel::naming;
use ent_platform::contracts::{self, ContractChange, NewContract, NewSubProcessor, ProcessorContract};
use ent_platform::identity::authz::{self, GROUPEMENTS_READ, RGPD_READ, RGPD_WRITE};
use ent_platform::registry::{get_org, Org};
use ent_rgpd::rgpd::derive::{named, ClientRoles};
use ent_rgpd::rgpd::{self as domain, RgpdState};
use serde_json::{json, Value};

/// Links of a sub-processing chain followed at most.
const CHAIN_DEPTH: usize = 5;

/// The chain of `contract`, each link with its role: the controllers `org` (its client) works for
/// under the conventions in force and `org` itself with its role from their RGPD roles
/// ([`domain::client_roles`]: « DSDEN du Val-de-Marne (responsable de traitement) → Commune de
/// Fresnes (sous-traitant, convention CONV-…) »), then the processor (« sous-traitant ultérieur,
/// marché GC-… » when `org` is itself a processor), then the sub-processors each one binds.
async fn chain(
    state: &RgpdState,
    org: &Org,
    roles: &ClientRoles,
    contract: &ProcessorContract,
) -> Result<Vec<Value>, Problem> {
    let link = |name: &str, role: String, art28: bool| json!({ "name": name, "role": role, "art28": art28 });
    let mut links: Vec<Value> = roles
        .controllers
        .iter()
        .map(|(controller, _)| link(&named(controller).official, "responsable de traitement".into(), true))
        .collect();
    links.dedup();
    let conventions: Vec<&str> = roles.controllers.iter().map(|(_, c)| c.as_str()).filter(|c| !c.is_empty()).collect();
    let client_role = match (conventions.as_slice(), roles.controllers.is_empty(), roles.controls) {
        (_, true, true) => "responsable de traitement".to_string(),
        (_, true, false) => "client du contrat ; aucune convention en vigueur ne fixe son rôle".to_string(),
        ([], false, _) => "sous-traitant".to_string(),
        ([one], false, _) => format!("sous-traitant, convention {one}"),
        (many, false, _) => format!("sous-traitant, conventions {}", many.join(", ")),
    };
    links.push(link(&org.designation().official, client_role, true));
    let rank = if roles.controllers.is_empty() { "sous-traitant" } else { "sous-traitant ultérieur" };
    let instrument = if contract.source_kind == contracts::FROM_GROUPEMENT { "marché" } else { "contrat" };
    let role = format!("{rank}, {instrument} {}", contract.reference);
    links.push(link(&contract.processor.name, role, contract.art28_clauses));
    let mut above = contract.processor.id.clone();
    for _ in 0..CHAIN_DEPTH {
        let below = contracts::list_for_client(&state.store, &above).await?;
        let Some(next) = below.into_iter().find(|c| c.parent_processor.as_ref().is_some_and(|p| p.id == above)) else {
            break;
        };
        let role = format!("sous-traitant ultérieur, contrat {}", next.reference);
        links.push(link(&next.processor.name, role, next.art28_clauses));
        above = next.processor.id;
    }
    Ok(links)
}

/// The CCAP holding the Art. 28 clauses of a contract a groupement's award recorded: the version
/// in force when the contract was recorded ([`contracts::clauses_versions`]), its title, number and
/// SHA-256, and the address of its page when the person may read it ([`ccap_href`]); `None` for
/// any other contract.
async fn clauses_document(on: &On<RgpdState>, c: &ProcessorContract) -> Result<Option<Value>, Problem> {
    let Some(groupement) = contracts::market_of(c) else { return Ok(None) };
    let in_force = contracts::clauses_versions(&on.state.store, std::slice::from_ref(c)).await?;
    let Some(version) = in_force.get(&c.id) else { return Ok(None) };
    let Some(d) = documents::get_version(&on.state.store, &version.id).await? else { return Ok(None) };
    Ok(Some(json!({ "title": d.title, "version": d.version, "sha256": d.sha256, "reference": d.groupement_reference,
                    "href": ccap_href(on, groupement, &d).await? })))
}

/// The address of the CCAP version `d` of `groupement` if the person may read it there, by the
/// document route's own check ([`gm_routes::reads_document`], as `groupements.read`): a DPO who
/// is neither the coordinator's nor a member's reads its reference and SHA-256, not a dead link.
async fn ccap_href(on: &On<RgpdState>, groupement: &str, d: &StoredDocument) -> Result<Option<String>, Problem> {
    let Some(g) = gm::get(&on.state.store, groupement).await? else { return Ok(None) };
    let readable = gm_routes::reads_document(&on.state.store, &caller(&on.signed, &GROUPEMENTS_READ), &g, d).await?;
    Ok(readable.then(|| format!("/groupements/{}/documents/{}?format=html", d.groupement_reference, d.id)))
}

/// The éditeurs and hébergeurs a contract may bind, by name.
async fn processors(state: &RgpdState) -> Result<Vec<Value>, Problem> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, name, kind FROM orgs WHERE kind IN ('editeur', 'hebergeur') ORDER BY name, id LIMIT 500",
    )
    .fetch_all(state.store.pool())
    .await?;
    let kind = |k: &str| if k == "editeur" { "éditeur" } else { "hébergeur" };
    Ok(rows.iter().map(|(id, name, k)| json!({ "id": id, "label": format!("{name} ({})", kind(k)) })).collect())
}

async fn contracts_page(on: &On<RgpdState>, org: &Org, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let mut rows = Vec::new();
    let roles = domain::client_roles(&on.state, org).await?;
    for c in contracts::list_for_client(&on.state.store, &org.id).await? {
        rows.push(json!({
            "href": format!("{}/contrats/{}", base(org), c.id),
            "reference": c.reference, "title": c.title, "art28": c.art28_clauses,
            "processor": c.processor.name, "starts_on": c.starts_on.as_deref().map(french_date),
            "ends_on": c.ends_on.as_deref().map(french_date), "chain": chain(&on.state, org, &roles, &c).await?,
        }));
    }
    let refusal = refusal.labelled(|field| label_of(NEW_CONTRACT, "Sous-traitant", field));
    let inputs = controls(NEW_CONTRACT, control, fields, Some(&refusal));
    let processor_error = processor_message(|field| refusal.message(field));
    let path = format!("{}/contrats", base(org));
    let values = json!({
        "title": format!("Contrats de sous-traitance — {}", org.designation().official),
        "path": path,
        "export": format!("{}/export-contrats", base(org)),
        "organisation_of": org.designation().of,
        "contracts": rows,
        "processors": processors(&on.state).await?,
        "inputs": inputs,
        "fields": { "processor": fields.get("processor"), "art28": fields.get("art28") == "oui" },
        "processor_error": processor_error,
        "can_write": domain::authorize(&on.state, &on.signed.0.actor, &RGPD_WRITE, org).await.is_ok(),
        "errors": refusal.errors,
    });
    let shell = shell(on, org, &[("Contrats", path.as_str())]).notice(refusal.notice);
    Ok(page::render_status(status, "rgpd_contracts.html", shell, values))
}

/// The notices of the contracts page after an action (`?apres=`).
const LIST_NOTICES: &[(&str, &str)] =
    &[("ajout", "Le contrat est enregistré."), ("modification", "Le contrat est mis à jour.")];

/// The notices of a contract's page after a change of its sub-processors (`?apres=`).
const CONTRACT_NOTICES: &[(&str, &str)] = &[
    ("sous-traitant-ajoute", "Le sous-traitant ultérieur est ajouté au contrat."),
    ("sous-traitant-retire", "Le sous-traitant ultérieur est retiré du contrat."),
];

/// `/rgpd/{org}/contrats`.
pub(super) async fn list(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let notice = Notice::after(query.get("apres"), LIST_NOTICES);
    contracts_page(&on, &org, Reply::shown(&Fields::default(), notice)).await
}

/// `/rgpd/{org}/export-contrats`: the contracts of the list and the annexes of the conventions
/// binding the organisation as CSV ([`domain::contracts_export`]), under the list's own check.
pub(super) async fn download(on: On<RgpdState>, Path(key): Path<String>) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let lines = domain::contracts_export::lines(&on.state, &org).await?;
    let today = ent_kernel::clock::today_in_france(on.state.clock.now()).format("%Y-%m-%d").to_string();
    let name = domain::contracts_export::file_name(&org, &today, domain::export::Format::Csv);
    let csv = domain::contracts_export::csv(&lines);
    Ok(ent_documents::documents::response::attachment(csv, domain::export::Format::Csv.content_type(), &name))
}

/// The message `message_of` gives any of the fields naming a contract's organisations, shown
/// at the form's processor select.
fn processor_message<'a>(message_of: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
    ["processor_org_id", "client_org_id", "parent_processor_org_id"]
        .iter()
        .find_map(|f| message_of(f))
        .map(str::to_string)
}

fn control(field: &str) -> String {
    let name = match field {
        "art28_clauses" => "art28",
        "processor_org_id" => "processor",
        "client_org_id" | "parent_processor_org_id" => "processor",
        other => other,
    };
    format!("contrat-{name}")
}

/// The fields of a new contract: name, label, kind (see [`controls`]).
const NEW_CONTRACT: &[(&str, &str, &str)] = &[
    ("reference", "Référence du contrat (obligatoire)", "text"),
    ("title", "Intitulé (obligatoire)", "text"),
    ("starts_on", "Début", "date"),
    ("ends_on", "Fin", "date"),
];

/// The fields of a contract that a change may edit.
const CONTRACT: &[(&str, &str, &str)] =
    &[("title", "Intitulé (obligatoire)", "text"), ("starts_on", "Début", "date"), ("ends_on", "Fin", "date")];

/// The fields of a sub-processor's contract.
const SUB_CONTRACT: &[(&str, &str, &str)] = &[
    ("reference", "Référence du contrat de sous-traitance ultérieure (obligatoire)", "text"),
    ("title", "Intitulé (obligatoire)", "text"),
    ("starts_on", "Début", "date"),
    ("ends_on", "Fin", "date"),
];

/// The label an error on `field` is said after: its control's in `spec`, or `processor` for
/// the fields naming a contract's organisations (shown at the processor select).
fn label_of<'a>(spec: &[(&str, &'a str, &str)], processor: &'a str, field: &str) -> Option<&'a str> {
    let names_an_organisation = ["processor_org_id", "client_org_id", "parent_processor_org_id"].contains(&field);
    label_in(spec, field).or(names_an_organisation.then_some(processor))
}

/// The control of the sub-processor form a domain field's error is shown at.
fn sub_control(field: &str) -> String {
    let name = match field {
        "processor_org_id" | "client_org_id" | "parent_processor_org_id" => "processor",
        other => other,
    };
    format!("sous-traitant-{name}")
}

/// The form of a contract's page a reply is about: the contract's own fields, or its
/// sub-processors (the one added, or one removed).
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Contract,
    SubProcessors,
}

/// Posted: a contract binding the organisation to the processor chosen.
pub(super) async fn add(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let new = NewContract {
        processor_org_id: fields.get("processor").to_string(),
        client_org_id: org.id.clone(),
        parent_processor_org_id: None,
        reference: fields.get("reference").to_string(),
        title: fields.get("title").to_string(),
        art28_clauses: fields.get("art28") == "oui",
        starts_on: fields.opt("starts_on"),
        ends_on: fields.opt("ends_on"),
        source_kind: "manual".into(),
        source_id: None,
    };
    // `contracts::record` updates the contract of the same processor, client and reference:
    // from this form (a new contract) that would silently overwrite one, perhaps recorded by
    // a groupement's award, without its version. The same terms again (a form sent twice)
    // change nothing; other terms are refused, the existing contract edited on its page.
    if let Some(existing) = contract_named(&on.state, &org, &new).await? {
        if same_terms(&existing, &new) {
            return Ok(page::redirect(&format!("{}/contrats?apres=ajout", base(&org))));
        }
        let problem = Problem::invalid_field(
            "reference",
            format!(
                "le contrat « {} » lie déjà {} à {} : modifiez-le depuis sa page, ou donnez une autre référence",
                existing.reference, existing.processor.name, org.name
            ),
        );
        return contracts_page(&on, &org, Reply::refused(&fields, &problem, control)).await;
    }
    let recorded = async {
        let mut tx = on.state.store.begin_write().await?;
        contracts::record(&mut tx, &on.state.store, &on.signed.0.actor, &new, on.state.clock.now()).await?;
        tx.commit().await?;
        Ok::<(), Problem>(())
    }
    .await;
    match recorded {
        Ok(()) => Ok(page::redirect(&format!("{}/contrats?apres=ajout", base(&org)))),
        Err(p) if p.kind.status().is_server_error() => Err(p.into()),
        Err(p) => contracts_page(&on, &org, Reply::refused(&fields, &p, control)).await,
    }
}

/// The contract of `org` that `new` names (its processor and reference), if there is one.
async fn contract_named(state: &RgpdState, org: &Org, new: &NewContract) -> Result<Option<ProcessorContract>, Problem> {
    let reference = new.reference.trim();
    Ok(contracts::list_for_client(&state.store, &org.id)
        .await?
        .into_iter()
        .find(|c| c.processor.id == new.processor_org_id && c.reference == reference))
}

/// Whether `existing` already says what the form of a new contract `new` says.
fn same_terms(existing: &ProcessorContract, new: &NewContract) -> bool {
    existing.parent_processor.is_none()
        && existing.source_kind == new.source_kind
        && existing.title == new.title.trim()
        && existing.art28_clauses == new.art28_clauses
        && existing.starts_on == new.starts_on
        && existing.ends_on == new.ends_on
}

/// The contract `id` binding a processor to `org` (404 for any other).
async fn contract_of(state: &RgpdState, org: &Org, id: &str) -> Result<ProcessorContract, Problem> {
    contracts::list_for_client(&state.store, &org.id)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| Problem::not_found(format!("aucun contrat « {id} »")))
}

fn contract_fields(c: &ProcessorContract) -> Fields {
    let mut pairs = vec![
        ("title".to_string(), c.title.clone()),
        ("starts_on".to_string(), c.starts_on.clone().unwrap_or_default()),
        ("ends_on".to_string(), c.ends_on.clone().unwrap_or_default()),
        ("version".to_string(), c.version.to_string()),
    ];
    if c.art28_clauses {
        pairs.push(("art28".into(), "oui".into()));
    }
    Fields(pairs)
}

/// Whether the person keeps the registers of `c`'s processor, whose chain of sub-processors
/// every client of that processor shares (the RGPD domain's write check on that organisation).
async fn keeps_chain(on: &On<RgpdState>, c: &ProcessorContract) -> Result<bool, Problem> {
    let Some(processor) = get_org(&on.state.store, &c.processor.id).await? else {
        return Ok(false);
    };
    Ok(domain::authorize(&on.state, &on.signed.0.actor, &RGPD_WRITE, &processor).await.is_ok())
}

/// The refusal of a change to `c`'s processor's chain (`what`: « y ajouter », « en retirer »)
/// by someone who does not keep its registers.
fn chain_kept_elsewhere(c: &ProcessorContract, what: &str) -> Problem {
    let of = naming::de(&c.processor.name);
    authz::forbidden(format!(
        "la chaîne de sous-traitance {of} figure dans les registres de tous ses clients : seul qui tient \
         les registres {of} peut {what} un sous-traitant ultérieur"
    ))
}

/// The sub-processors under `c`, each with its removal form's address when the person may remove it.
async fn sub_rows(
    on: &On<RgpdState>,
    c: &ProcessorContract,
    path: &str,
    can_write: bool,
) -> Result<Vec<Value>, Problem> {
    let mut rows = Vec::new();
    // Removing one changes the processor's chain: who keeps its registers only, as adding.
    let may_remove = can_write && keeps_chain(on, c).await?;
    for sub in contracts::sub_processors(&on.state.store, c).await? {
        let removal = if may_remove { Some(format!("{path}/sous-traitants/{}/retrait", sub.id)) } else { None };
        rows.push(json!({
            "id": sub.id, "name": sub.processor.name, "reference": sub.reference, "title": sub.title,
            "art28": sub.art28_clauses, "starts_on": sub.starts_on.as_deref().map(french_date),
            "ends_on": sub.ends_on.as_deref().map(french_date), "removal": removal,
        }));
    }
    Ok(rows)
}

async fn contract_page(
    on: &On<RgpdState>,
    org: &Org,
    c: &ProcessorContract,
    reply: Reply<'_>,
    part: Part,
) -> Result<Response, PageError> {
    let Reply { fields: posted, refusal, status } = reply;
    let stored = contract_fields(c);
    let empty = Fields::default();
    let (fields, sub_fields) = match part {
        Part::Contract => (posted, &empty),
        Part::SubProcessors => (&stored, posted),
    };
    let list = format!("{}/contrats", base(org));
    let path = format!("{list}/{}", c.id);
    let refusal = match part {
        Part::Contract => refusal.labelled(|field| label_of(CONTRACT, "Sous-traitant", field)),
        Part::SubProcessors => refusal.labelled(|field| label_of(SUB_CONTRACT, "Sous-traitant ultérieur", field)),
    };
    let inputs = controls(CONTRACT, control, fields, (part == Part::Contract).then_some(&refusal));
    let sub_error = |name: &str| if part == Part::SubProcessors { refusal.message(name) } else { None };
    let sub_inputs = controls(SUB_CONTRACT, sub_control, sub_fields, (part == Part::SubProcessors).then_some(&refusal));
    let processor_error = processor_message(sub_error);
    let candidates: Vec<Value> = processors(&on.state)
        .await?
        .into_iter()
        .filter(|p| p["id"].as_str() != Some(c.processor.id.as_str()))
        .collect();
    let can_write = domain::authorize(&on.state, &on.signed.0.actor, &RGPD_WRITE, org).await.is_ok();
    let can_add_sub = can_write && keeps_chain(on, c).await?;
    let sub_version = match sub_fields.get("version") {
        "" => c.version.to_string(),
        shown => shown.to_string(),
    };
    let values = json!({
        "title": format!("Contrat {} — {}", c.reference, org.designation().official),
        "path": path,
        "list": list,
        "processor": c.processor.name,
        "reference": c.reference,
        "chain": chain(&on.state, org, &domain::client_roles(&on.state, org).await?, c).await?,
        "clauses": clauses_document(on, c).await?,
        "art28_locked": c.source_kind == contracts::FROM_GROUPEMENT,
        "version": fields.get("version"),
        "inputs": inputs,
        "art28": fields.get("art28") == "oui",
        "can_write": can_write,
        "errors": refusal.errors,
        "subs": sub_rows(on, c, &path, can_write).await?,
        "sub": {
            "path": format!("{path}/sous-traitants"),
            "allowed": can_add_sub,
            "version": sub_version,
            "inputs": sub_inputs,
            "processors": candidates,
            "processor": sub_fields.get("processor"),
            "processor_error": processor_error,
            "art28": sub_fields.get("art28") == "oui",
        },
    });
    let shell =
        shell(on, org, &[("Contrats", list.as_str()), (c.reference.as_str(), path.as_str())]).notice(refusal.notice);
    Ok(page::render_status(status, "rgpd_contract.html", shell, values))
}

/// `/rgpd/{org}/contrats/{contrat}`: a contract of the organisation, as a form, with its
/// sub-processors.
pub(super) async fn show(
    on: On<RgpdState>,
    Path((key, id)): Path<(String, String)>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let c = contract_of(&on.state, &org, &id).await?;
    let notice = Notice::after(query.get("apres"), CONTRACT_NOTICES);
    contract_page(&on, &org, &c, Reply::shown(&contract_fields(&c), notice), Part::Contract).await
}

/// Posted: the contract's dates, Art. 28 flag and title, at the version the form was shown
/// at; a stale version keeps what was typed and offers to save over the newer one.
pub(super) async fn save(
    on: On<RgpdState>,
    Path((key, id)): Path<(String, String)>,
    Form(mut fields): Form<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let c = contract_of(&on.state, &org, &id).await?;
    let Ok(shown) = fields.get("version").parse::<i64>() else {
        let problem = Problem::invalid_field("version", "version du contrat absente du formulaire : rechargez la page");
        return contract_page(&on, &org, &c, Reply::refused(&fields, &problem, control), Part::Contract).await;
    };
    let change = ContractChange {
        title: fields.get("title").to_string(),
        art28_clauses: fields.get("art28") == "oui",
        starts_on: fields.opt("starts_on"),
        ends_on: fields.opt("ends_on"),
    };
    let saved = async {
        let mut tx = on.state.store.begin_write().await?;
        let now = on.state.clock.now();
        contracts::update(&mut tx, &on.state.store, &on.signed.0.actor, &c, &change, shown, now).await?;
        tx.commit().await?;
        Ok::<(), Problem>(())
    }
    .await;
    match saved {
        Ok(()) => Ok(page::redirect(&format!("{}/contrats?apres=modification", base(&org)))),
        Err(p) if p.kind == ProblemKind::PreconditionFailed => {
            let conflict = stale_version(&mut fields, c.version, "ce contrat a été modifié");
            contract_page(&on, &org, &c, Reply::refused(&fields, &conflict, control), Part::Contract).await
        }
        Err(p) if p.kind.status().is_server_error() => Err(p.into()),
        Err(p) => contract_page(&on, &org, &c, Reply::refused(&fields, &p, control), Part::Contract).await,
    }
}

/// The contract's version a sub-processor form was shown at; a form without it is refused.
fn shown_version(fields: &Fields) -> Result<i64, Problem> {
    fields
        .get("version")
        .parse::<i64>()
        .map_err(|_| Problem::invalid_field("version", "version du contrat absente du formulaire : rechargez la page"))
}

/// The page after a change of the contract's sub-processors: its address on success, the
/// page again on a refusal (a stale version keeps what was typed and offers the newer one).
async fn sub_answer(
    on: &On<RgpdState>,
    org: &Org,
    c: &ProcessorContract,
    mut fields: Fields,
    done: Result<(), Problem>,
    after: &str,
) -> Result<Response, PageError> {
    match done {
        Ok(()) => Ok(page::redirect(&format!("{}/contrats/{}?apres={after}", base(org), c.id))),
        Err(p) if p.kind == ProblemKind::PreconditionFailed => {
            let conflict = stale_version(&mut fields, c.version, "ce contrat a été modifié");
            contract_page(on, org, c, Reply::refused(&fields, &conflict, sub_control), Part::SubProcessors).await
        }
        // A sub-processor that is not under this contract is no page.
        Err(p) if p.kind.status().is_server_error() || p.kind == ProblemKind::NotFound => Err(p.into()),
        Err(p) => contract_page(on, org, c, Reply::refused(&fields, &p, sub_control), Part::SubProcessors).await,
    }
}

/// Posted: a sub-processor engaged by the contract's processor under this contract, with
/// its Art. 28 facts, at the version the page was shown at.
pub(super) async fn add_sub(
    on: On<RgpdState>,
    Path((key, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let c = contract_of(&on.state, &org, &id).await?;
    let sub = NewSubProcessor {
        processor_org_id: fields.get("processor").to_string(),
        reference: fields.get("reference").to_string(),
        title: fields.get("title").to_string(),
        art28_clauses: fields.get("art28") == "oui",
        starts_on: fields.opt("starts_on"),
        ends_on: fields.opt("ends_on"),
    };
    let added = async {
        if !keeps_chain(&on, &c).await? {
            return Err(chain_kept_elsewhere(&c, "y ajouter"));
        }
        let shown = shown_version(&fields)?;
        let mut tx = on.state.store.begin_write().await?;
        let now = on.state.clock.now();
        contracts::add_sub_processor(&mut tx, &on.state.store, &on.signed.0.actor, &c, &sub, shown, now).await?;
        tx.commit().await?;
        Ok::<(), Problem>(())
    }
    .await;
    sub_answer(&on, &org, &c, fields, added, "sous-traitant-ajoute").await
}

/// Posted: the sub-processor `sous_traitant` removed from under the contract, at the
/// version the page was shown at; one the person may not remove is refused (403).
pub(super) async fn remove_sub(
    on: On<RgpdState>,
    Path((key, id, sub_id)): Path<(String, String, String)>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let c = contract_of(&on.state, &org, &id).await?;
    let removed = async {
        let shown = shown_version(&fields)?;
        // A form shown before another change says so first (the sub-processor may be gone since).
        if shown != c.version {
            return Err(precondition_failed(c.version));
        }
        let subs = contracts::sub_processors(&on.state.store, &c).await?;
        let sub = subs
            .iter()
            .find(|s| s.id == sub_id)
            .ok_or_else(|| Problem::not_found(format!("aucun sous-traitant ultérieur « {sub_id} » sous ce contrat")))?;
        if !keeps_chain(&on, &c).await? {
            return Err(chain_kept_elsewhere(&c, "en retirer"));
        }
        let mut tx = on.state.store.begin_write().await?;
        let now = on.state.clock.now();
        contracts::remove_sub_processor(&mut tx, &on.state.store, &on.signed.0.actor, &c, &sub.id, shown, now).await?;
        tx.commit().await?;
        Ok::<(), Problem>(())
    }
    .await;
    sub_answer(&on, &org, &c, fields, removed, "sous-traitant-retire").await
}
