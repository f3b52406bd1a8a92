//! The coordinator's forms: open a groupement (object, lots, bouquet and options from the
//! catalog, cost key, timeline), decide on the applications in bulk, move through the
//! states, award the contract with the DECP facts, generate and share the documents.

use super::{answered, caller, own_orgs, On};
use crate::forms::{cents, stale_version, Fields, Reply};
use crate::page::{self, PageError, Shell};
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Form;
use ent_groupements::groupements::award::{self, AwardInput};
use ent_groupements::groupements::consultation::Procedure;
use ent_groupements::groupements::costs::{Establishments, PriceLine, UnitPrice};
use ent_groupements::groupements::decp::DecpFacts;
use ent_groupements::groupements::documents::{self, Kind};
use ent_groupements::groupements::sans_suite::{self, Motif, SansSuiteInput};
use ent_groupements::groupements::shares::{Basis, KeyPart};
use ent_groupements::groupements::{
    self as gm, membership, routes as domain, GroupementsState, Lot, NewGroupement, Status, COORDINATOR_KINDS,
};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::kernel::roles::Role;
use ent_platform::catalog::BouquetKind;
use ent_platform::identity::authz::GROUPEMENTS_MANAGE;
use ent_platform::identity::Caller;
use serde_json::{json, Value};

/// The cost key's bases as the form names them.
const BASES: &[(&str, Basis, &str)] = &[
    ("poids-eleves", Basis::Pupils, "Élèves"),
    ("poids-ecoles", Basis::Schools, "Écoles"),
    ("poids-comptes", Basis::Accounts, "Comptes ENT (élèves, enseignants, parents)"),
    ("poids-egal", Basis::Equal, "Parts égales"),
];

/// The id of the control of a field of `NewGroupement`.
fn control_id(field: &str) -> String {
    let id = match field {
        "coordinator" => "coordonnateur",
        "title" => "titre",
        "object" => "objet",
        "bouquet" => "bouquet",
        "options" => "options",
        // The key's fieldset (legend « Clé de répartition »): its error is the weights' total.
        "cost_key" => "cle",
        "duration_months" => "duree",
        "duration_justification" => "justification-duree",
        "procedure" => "procedure",
        "estimated_amount_ht_cents" => "valeur-estimee",
        "maximum_margin_percent" => "marge-maximum",
        "common_expenses_cents" => "frais-communs",
        "coordinator_share_percent" => "part-coordonnateur",
        "application_deadline" => "date-limite",
        "consultation_date" => "date-consultation",
        "award_planned_date" => "date-attribution",
        f if f.starts_with("lots") => "lots",
        _ => "nouveau-groupement",
    };
    id.to_string()
}

/// The fields of `NewGroupement` in the order of their controls on the form, from top to bottom:
/// the error summary lists them so (RGAA 11.10).
const FORM_ORDER: [&str; 17] = [
    "coordinator",
    "title",
    "object",
    "lots",
    "bouquet",
    "options",
    "cost_key",
    "duration_months",
    "duration_justification",
    "procedure",
    "estimated_amount_ht_cents",
    "maximum_margin_percent",
    "common_expenses_cents",
    "coordinator_share_percent",
    "application_deadline",
    "consultation_date",
    "award_planned_date",
];

/// The label of a field of `NewGroupement` on the form, as the error summary names it.
fn field_label(field: &str) -> Option<&'static str> {
    let label = match field {
        "coordinator" => "Coordonnateur",
        "title" => "Intitulé",
        "object" => "Objet de l'achat",
        "bouquet" => "Bouquet de base",
        "options" => "Options du catalogue",
        "cost_key" => "Clé de répartition",
        "duration_months" => "Durée du marché",
        "duration_justification" => "Justification de la durée",
        "procedure" => "Procédure de passation",
        "estimated_amount_ht_cents" => "Valeur estimée du besoin",
        "maximum_margin_percent" => "Marge du maximum",
        "common_expenses_cents" => "Dépenses communes",
        "coordinator_share_percent" => "Part du coordonnateur",
        "application_deadline" => "Date limite des adhésions",
        "consultation_date" => "Date prévue de la consultation",
        "award_planned_date" => "Date prévue de l'attribution",
        f if f.starts_with("lots") => "Lots",
        _ => return None,
    };
    Some(label)
}

/// The organisations the person coordinates for (an admin types one).
fn coordinator_choices(on: &On<GroupementsState>) -> Vec<Value> {
    own_orgs(&on.signed, Role::Coordinateur, &COORDINATOR_KINDS)
        .map(|o| json!({ "id": o.id, "name": o.name }))
        .collect()
}

async fn creation_page(on: &On<GroupementsState>, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.in_order_of(FORM_ORDER).labelled(field_label);
    let catalog = &on.state.catalog;
    let mut seen = std::collections::HashSet::new();
    let bouquets: Vec<_> = catalog.bouquets.iter().rev().filter(|b| seen.insert(b.id.clone())).collect();
    let chosen = fields.opt("bouquet").unwrap_or_else(|| "socle-1d".to_string());
    let options = fields.all("options");
    let base: Vec<Value> = bouquets
        .iter()
        .filter(|b| b.kind == BouquetKind::Base)
        .map(|b| json!({ "id": b.id, "name": b.name, "selected": b.id == chosen }))
        .collect();
    let extra: Vec<Value> = bouquets
        .iter()
        .filter(|b| b.kind == BouquetKind::Option)
        .map(
            |b| json!({ "id": b.id, "name": b.name, "description": b.description, "checked": options.contains(&b.id) }),
        )
        .collect();
    let weights: Vec<Value> = BASES
        .iter()
        .map(|(name, basis, label)| {
            let default = if *basis == Basis::Accounts && fields.0.is_empty() { "100" } else { "" };
            json!({ "name": name, "label": label, "value": fields.opt(name).unwrap_or_else(|| default.to_string()) })
        })
        .collect();
    let field = |name: &str, default: &str| fields.opt(name).unwrap_or_else(|| default.to_string());
    let procedure = procedure_of(fields).unwrap_or_default();
    let procedures: Vec<Value> = [Procedure::AppelOffresOuvert, Procedure::ProcedureAdaptee]
        .into_iter()
        .map(|p| json!({ "value": p.decp(), "label": p.decp(), "selected": p == procedure }))
        .collect();
    let shell = Shell::new(&on.console, Some(&on.signed.0), "/groupements")
        .crumbs(&[("Groupements", "/groupements"), ("Ouvrir un groupement", "/groupements/nouveau")])
        .notice(refusal.notice.clone());
    let values = json!({
        "coordinators": coordinator_choices(on),
        "bouquets": base,
        "options": extra,
        "weights": weights,
        "procedures": procedures,
        "fields": {
            "coordonnateur": field("coordonnateur", ""), "titre": field("titre", ""), "objet": field("objet", ""),
            "lots": field("lots", "Solution d'espace numérique de travail"), "duree": field("duree", "36"),
            "justification-duree": field("justification-duree", ""), "valeur-estimee": field("valeur-estimee", ""),
            "marge-maximum": field("marge-maximum", ""),
            "frais-communs": field("frais-communs", ""), "part-coordonnateur": field("part-coordonnateur", ""),
            "date-limite": field("date-limite", ""), "date-consultation": field("date-consultation", ""),
            "date-attribution": field("date-attribution", ""),
        },
        "errors": super::by_control(refusal.errors),
    });
    Ok(page::render_status(status, "groupement_new.html", shell, values))
}

pub(super) async fn new_form(on: On<GroupementsState>, Query(query): Query<Fields>) -> Result<Response, PageError> {
    creation_page(&on, Reply::shown(&query, None)).await
}

/// The lots of the form: one a line, numbered in order.
fn lots_of(text: &str) -> Vec<Lot> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, title)| Lot { number: i as u32 + 1, title: title.to_string(), description: None, lines: Vec::new() })
        .collect()
}

/// The cost key of the form: each basis given a weight (a weight that is not a whole
/// number is sent as 0, which the domain refuses).
fn cost_key_of(fields: &Fields) -> Vec<KeyPart> {
    BASES
        .iter()
        .filter_map(|(name, basis, _)| {
            fields.opt(name).map(|w| KeyPart { basis: *basis, weight: w.parse().unwrap_or(0) })
        })
        .collect()
}

/// The procedure chosen on the form (by its DECP name), none when the field is absent or unknown.
fn procedure_of(fields: &Fields) -> Option<Procedure> {
    let chosen = fields.opt("procedure")?;
    [Procedure::AppelOffresOuvert, Procedure::ProcedureAdaptee].into_iter().find(|p| p.decp() == chosen)
}

fn new_groupement(fields: &Fields) -> NewGroupement {
    NewGroupement {
        coordinator: fields.get("coordonnateur").to_string(),
        title: fields.get("titre").to_string(),
        object: fields.get("objet").to_string(),
        lots: Some(lots_of(fields.get("lots"))),
        bouquet: fields.opt("bouquet"),
        options: fields.all("options"),
        support: None,
        support_policy: None,
        cost_key: Some(cost_key_of(fields)),
        duration_months: Some(fields.get("duree").parse().unwrap_or(0)),
        duration_justification: fields.opt("justification-duree"),
        procedure: procedure_of(fields),
        // A figure that is no amount is sent as one the domain refuses, never as none.
        estimated_amount_ht_cents: fields.opt("valeur-estimee").map(|v| cents(&v).unwrap_or(-1)),
        // A figure that is no whole percentage is sent as one the domain refuses.
        maximum_margin_percent: fields.opt("marge-maximum").map(|p| p.trim().parse().unwrap_or(u32::MAX)),
        common_expenses_cents: cents(fields.get("frais-communs")),
        coordinator_share_percent: fields.opt("part-coordonnateur").map(|p| p.parse().unwrap_or(u32::MAX)),
        application_deadline: fields.get("date-limite").to_string(),
        consultation_date: fields.opt("date-consultation"),
        award_planned_date: fields.opt("date-attribution"),
    }
}

pub(super) async fn create(on: On<GroupementsState>, Form(fields): Form<Fields>) -> Result<Response, PageError> {
    let actor = &on.signed.0.actor;
    match gm::create(&on.state.ctx(actor), new_groupement(&fields)).await {
        Ok(g) => Ok(page::redirect(&format!("/groupements/{}?apres=ouvert", g.reference))),
        Err(problem) if problem.kind.status().is_server_error() => Err(problem.into()),
        Err(problem) => creation_page(&on, Reply::refused(&fields, &problem, control_id)).await,
    }
}

/// Accepts the checked applications (`decision=accepter`), or refuses each with the
/// reason typed on its row (`decision=refuser`, `motif-{id}`).
pub(super) async fn decide(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let ids = fields.all("candidatures");
    let decision = fields.get("decision");
    let after = if decision == "accepter" { "acceptees" } else { "refusees" };
    let control = |f: &str| if f.starts_with("motif-") { f.to_string() } else { "candidatures".to_string() };
    coordinator_step(&on, &key, &fields, after, control, async |manager, g| match decision {
        "accepter" => domain::accept_these(&on.state, manager, g, &ids).await.map(|_| ()),
        "refuser" => refuse_each(&on, g, &ids, &fields).await,
        _ => Err(Problem::invalid_field("decision", "choisissez d'accepter ou de refuser les candidatures cochées")),
    })
    .await
}

/// A form of the coordinator on the groupement of the path (404, then 403 for another
/// coordinator's): `step` run as the person, then the page after `after` or the refusal.
async fn coordinator_step<T>(
    on: &On<GroupementsState>,
    key: &str,
    fields: &Fields,
    after: &str,
    control: impl Fn(&str) -> String,
    step: impl AsyncFnOnce(&Caller, &gm::Groupement) -> Result<T, Problem>,
) -> Result<Response, PageError> {
    let manager = caller(&on.signed, &GROUPEMENTS_MANAGE);
    let g = domain::coordinated(&on.state, &manager, key).await?;
    let done = step(&manager, &g).await;
    answered(on, &g.reference, fields, done, after, control).await
}

/// Refuses the applications of `ids`, each with its row's reason, all or none: a missing
/// reason names its row's field (every one at once) and nothing is refused.
async fn refuse_each(
    on: &On<GroupementsState>,
    g: &gm::Groupement,
    ids: &[String],
    fields: &Fields,
) -> Result<(), Problem> {
    if ids.is_empty() {
        return Err(Problem::invalid_field("candidatures", "cochez au moins une candidature à refuser"));
    }
    let mut refusals = Vec::new();
    for id in ids {
        let app = membership::get(&on.state.store, &g.id, id).await?;
        refusals.push((app, fields.get(&format!("motif-{id}")).to_string()));
    }
    let ctx = on.state.ctx(&on.signed.0.actor);
    membership::reject_many(&ctx, g, &refusals).await.map(|_| ()).map_err(|mut p| {
        for e in &mut p.errors {
            let row = e.field.strip_prefix("applications[").and_then(|r| r.split(']').next()?.parse::<usize>().ok());
            if let Some(id) = row.and_then(|i| ids.get(i)) {
                e.field = format!("motif-{id}");
            }
        }
        p
    })
}

/// A state change (`vers`): close, reopen, consult, run, end.
pub(super) async fn move_status(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let to = Status::parse(fields.get("vers"));
    coordinator_step(
        &on,
        &key,
        &fields,
        "statut",
        |field| match field {
            "offers_deadline" => "date-limite-offres".to_string(),
            _ => "etats".to_string(),
        },
        async |manager, g| match to {
            Some(to) => {
                // The offers deadline is the launch's own: any other move ignores the field.
                let deadline = (to == Status::Consultation).then(|| fields.get("date-limite-offres"));
                gm::transition(&on.state.ctx(&manager.actor), g, to, Some(fields.get("reason")), deadline).await
            }
            None => Err(Problem::invalid_field("vers", "choisissez l'état où passer le groupement")),
        },
    )
    .await
}

/// The version of the groupement the page showed (its `version` field), or 422.
fn shown_version(fields: &Fields) -> Result<i64, Problem> {
    fields.get("version").parse::<i64>().map_err(|_| {
        Problem::invalid_field("version", "version du groupement absente du formulaire : rechargez la page")
    })
}

/// A change made at the version the page showed, whose refusal for a newer version (412) is said
/// in French with the fields kept and that newer `current` version put in, to post again.
fn kept_if_stale<T>(done: Result<T, Problem>, fields: &mut Fields, current: i64) -> Result<T, Problem> {
    match done {
        Err(p) if p.kind == ProblemKind::PreconditionFailed => {
            Err(stale_version(fields, current, "ce groupement a été modifié"))
        }
        other => other,
    }
}

/// The motifs of a declaration sans suite, as the form offers them (`chosen` checked).
pub(super) fn motifs() -> Vec<Value> {
    Motif::ALL.iter().map(|m| json!({ "value": m.as_str(), "label": m.label() })).collect()
}

/// Declares the consultation sans suite (`sans-suite-motif`, `sans-suite-justification`) at the
/// version the page showed: the groupement goes back to `closed`, its members told.
pub(super) async fn declare_sans_suite(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let input = SansSuiteInput {
        motif: fields.get("sans-suite-motif").to_string(),
        justification: fields.get("sans-suite-justification").to_string(),
    };
    let control = |field: &str| match field {
        "motif" => "sans-suite-motif".to_string(),
        "justification" => "sans-suite-justification".to_string(),
        _ => "sans-suite".to_string(),
    };
    versioned_step(&on, &key, fields, "sans-suite", control, async |manager, g, version| {
        sans_suite::declare(&on.state.ctx(&manager.actor), g, version, &input).await
    })
    .await
}

/// Moves the offers deadline of the consultation running (`nouvelle-date-limite-offres`, with its
/// `motif-date-limite-offres`) at the version the page showed, through the API's `PATCH` (its
/// rules, its audit record): 422 on each field, 409 once the deadline recorded has passed.
pub(super) async fn move_offers_deadline(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let patch = gm::GroupementPatch {
        offers_deadline: Some(fields.get("nouvelle-date-limite-offres").to_string()),
        offers_deadline_reason: Some(fields.get("motif-date-limite-offres").to_string()),
        ..Default::default()
    };
    let control = |field: &str| match field {
        "offers_deadline" => "nouvelle-date-limite-offres".to_string(),
        "offers_deadline_reason" => "motif-date-limite-offres".to_string(),
        _ => "report-date-limite-offres".to_string(),
    };
    versioned_step(&on, &key, fields, "date-limite-offres", control, async |manager, g, version| {
        gm::update(&on.state.ctx(&manager.actor), g, version, patch).await
    })
    .await
}

/// A form of the coordinator at the version its page showed (404, then 403 for another
/// coordinator's): `step` run at that version, then the page after `after`, or the refusal
/// with the input kept (a stale version said so).
async fn versioned_step<T>(
    on: &On<GroupementsState>,
    key: &str,
    mut fields: Fields,
    after: &str,
    control: impl Fn(&str) -> String,
    step: impl AsyncFnOnce(&Caller, &gm::Groupement, i64) -> Result<T, Problem>,
) -> Result<Response, PageError> {
    let manager = caller(&on.signed, &GROUPEMENTS_MANAGE);
    let g = domain::coordinated(&on.state, &manager, key).await?;
    let done = match shown_version(&fields) {
        Ok(version) => step(&manager, &g, version).await,
        Err(problem) => Err(problem),
    };
    let done = kept_if_stale(done, &mut fields, g.version);
    answered(on, &g.reference, &fields, done, after, control).await
}

/// A list field of the DECP facts: one value a line.
fn lines(fields: &Fields, name: &str) -> Option<Vec<String>> {
    let values: Vec<String> =
        fields.get(name).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    Some(values).filter(|v| !v.is_empty())
}

fn yes_no(fields: &Fields, name: &str) -> Option<bool> {
    match fields.get(name) {
        "oui" => Some(true),
        "non" => Some(false),
        _ => None,
    }
}

/// The award form's fields as the domain takes them.
fn award_input(fields: &Fields, lots: &[Lot]) -> AwardInput {
    let text = |name: &str| fields.opt(name);
    AwardInput {
        vendor_siret: text("siret"),
        vendor_name: text("titulaire"),
        amount_ht_cents: cents(fields.get("montant-ht")),
        amount_ttc_cents: cents(fields.get("montant-ttc")),
        notified_on: text("notification"),
        duration_months: None,
        unit_prices: unit_prices(fields, lots),
        rejections_by_post: yes_no(fields, "rejets-courrier"),
        advance_renounced: match fields.get("avance-titulaire") {
            "renonce" => Some(true),
            "ne-renonce-pas" => Some(false),
            _ => None,
        },
        decp: DecpFacts {
            acheteur_siret: text("acheteur"),
            code_cpv: text("cpv"),
            techniques: lines(fields, "techniques"),
            modalites_execution: lines(fields, "modalites"),
            marche_innovant: yes_no(fields, "innovant"),
            ccag: text("ccag"),
            offres_recues: fields.get("offres").parse().ok(),
            attribution_avance: yes_no(fields, "avance"),
            taux_avance: fields.get("taux-avance").replace(',', ".").parse::<f64>().ok().map(|p| p / 100.0),
            type_groupement_operateurs: text("groupement-operateurs"),
            sous_traitance_declaree: yes_no(fields, "sous-traitance"),
            procedure: text("procedure"),
            forme_prix: text("forme-prix"),
            types_prix: lines(fields, "types-prix"),
            considerations_sociales: lines(fields, "sociales"),
            considerations_environnementales: lines(fields, "environnementales"),
            ..DecpFacts::default()
        },
        lots: Vec::new(),
    }
}

/// The control of a lot's unit price on a BPU line.
fn price_control(lot: u32, line: PriceLine) -> String {
    match line {
        PriceLine::AccountYear => format!("prix-{lot}-compte"),
        PriceLine::SchoolSetup => format!("prix-{lot}-ecole"),
        PriceLine::Custom(n) => format!("prix-{lot}-ligne-{n}"),
    }
}

/// The unit prices HT the form gives, each lot's BPU lines (an unreadable one sent as -1,
/// which the domain refuses).
fn unit_prices(fields: &Fields, lots: &[Lot]) -> Vec<UnitPrice> {
    let mut prices = Vec::new();
    for lot in lots {
        for line in PriceLine::ALL {
            let given = fields.get(&price_control(lot.number, line));
            if !given.trim().is_empty() {
                let unit_price_ht_cents = cents(given).unwrap_or(-1);
                prices.push(UnitPrice { lot: lot.number, line, unit_price_ht_cents });
            }
        }
    }
    prices
}

/// The control of a field of `AwardInput`.
fn award_control(field: &str) -> String {
    let id = match field {
        "vendor_siret" => "siret",
        "vendor_name" => "titulaire",
        "amount_ht_cents" => "montant-ht",
        "amount_ttc_cents" => "montant-ttc",
        "notified_on" => "notification",
        "rejections_by_post" => "rejets-courrier",
        "advance_renounced" => "avance-titulaire",
        "decp.acheteur_siret" => "acheteur",
        "decp.code_cpv" => "cpv",
        "decp.techniques" => "techniques",
        "decp.modalites_execution" => "modalites",
        "decp.marche_innovant" => "innovant",
        "decp.ccag" => "ccag",
        "decp.offres_recues" => "offres",
        "decp.attribution_avance" => "avance",
        "decp.taux_avance" => "taux-avance",
        "decp.type_groupement_operateurs" => "groupement-operateurs",
        "decp.sous_traitance_declaree" => "sous-traitance",
        "decp.procedure" => "procedure",
        "decp.forme_prix" => "forme-prix",
        "decp.types_prix" => "types-prix",
        "decp.considerations_sociales" => "sociales",
        "decp.considerations_environnementales" => "environnementales",
        _ => "attribution",
    };
    id.to_string()
}

/// The award form's fields: what the DECP record asks, each with its value kept.
pub(super) fn award_fields(fields: &Fields, lots: &[Lot], equipped: Establishments) -> Vec<Value> {
    let text = |id: &str, label: &str, hint: &str| json!({ "id": id, "label": label, "hint": hint, "kind": "text", "value": fields.get(id) });
    let area = |id: &str, label: &str, hint: &str| json!({ "id": id, "label": label, "hint": hint, "kind": "area", "value": fields.get(id) });
    let choice = |id: &str, label: &str, choices: &[&str]| json!({ "id": id, "label": label, "hint": "", "kind": "select", "value": fields.get(id), "choices": choices });
    let prices = lots.iter().flat_map(|lot| {
        PriceLine::ALL.map(|line| {
            let id = price_control(lot.number, line);
            let (unit, what) = (line.unit(equipped), line.label(equipped));
            let label = format!("Prix unitaire HT du lot {} par {unit} (euros) — {what}", lot.number);
            json!({ "id": id, "label": label, "hint": "Bordereau des prix unitaires", "kind": "text", "value": fields.get(&id) })
        })
    });
    let mut all = vec![
        text("siret", "SIRET du titulaire", "14 chiffres"),
        text("titulaire", "Nom du titulaire", "Obligatoire si l'éditeur n'est pas encore au répertoire"),
        text(
            "montant-ht",
            "Montant maximum hors taxes (euros)",
            "Facultatif : les quantités du DQE aux prix unitaires ci-dessous, repris si le champ est vide",
        ),
        text(
            "montant-ttc",
            "Montant maximum toutes taxes comprises (euros)",
            "Facultatif : le même, TVA de chaque lot comprise",
        ),
        json!({ "id": "notification", "label": "Date de notification du marché", "hint": "Après la date limite de réception des offres ; appel d'offres ouvert : au plus tôt 11 jours après l'envoi des rejets aux candidats évincés (16 par courrier)", "kind": "date", "value": fields.get("notification") }),
        choice(
            "rejets-courrier",
            "Rejets notifiés aux candidats évincés par courrier (non électronique)",
            &["", "oui", "non"],
        ),
        json!({
            "id": "avance-titulaire",
            "label": "Avance : le choix du titulaire dans son acte d'engagement (section F)",
            "hint": "Article 7 du CCAP : 10 % du montant TTC de chaque bon de commande de plus de 50 000 € HT, sauf renonciation. L'acte d'engagement et les données essentielles en découlent.",
            "kind": "radio",
            "value": fields.get("avance-titulaire"),
            "choices": [
                { "value": "renonce", "label": "Le titulaire renonce au bénéfice de l'avance" },
                { "value": "ne-renonce-pas", "label": "Le titulaire ne renonce pas au bénéfice de l'avance" },
            ],
        }),
        text("acheteur", "SIRET de l'acheteur (coordonnateur)", "Seulement si le répertoire ne le connaît pas"),
        text("cpv", "Code CPV", "Par exemple 48190000"),
        area(
            "techniques",
            "Techniques d'achat",
            "Celle du règlement de la consultation et du CCAP, Accord-cadre, si le champ est vide",
        ),
        area(
            "modalites",
            "Modalités d'exécution",
            "Celle du règlement de la consultation et du CCAP, Bons de commande, si le champ est vide",
        ),
        choice("innovant", "Marché innovant", &["", "oui", "non"]),
        text(
            "ccag",
            "CCAG de référence",
            "Celui de l'article 3 du CCAP, Techniques de l'information et de la communication, si le champ est vide",
        ),
        text("offres", "Nombre d'offres reçues", ""),
        choice("avance", "Avance accordée (données essentielles)", &["", "oui", "non"]),
        text(
            "taux-avance",
            "Taux de l'avance (%)",
            "Facultatif : repris du choix du titulaire et du CCAP si le champ est vide",
        ),
        choice(
            "groupement-operateurs",
            "Groupement d'opérateurs économiques",
            &["", "Pas de groupement", "Conjoint", "Solidaire"],
        ),
        choice("sous-traitance", "Sous-traitance déclarée", &["", "oui", "non"]),
        text(
            "procedure",
            "Procédure",
            "Celle des pièces de la consultation (la procédure du groupement) si le champ est vide",
        ),
        choice("forme-prix", "Forme du prix", &["", "Unitaire"]),
        area("types-prix", "Types de prix", "Celui de l'acte d'engagement, Définitif révisable, si le champ est vide"),
        area("sociales", "Considérations sociales", "Une par ligne, par exemple Pas de considération sociale"),
        area(
            "environnementales",
            "Considérations environnementales",
            "Une par ligne, par exemple Clause environnementale",
        ),
    ];
    all.splice(4..4, prices);
    all
}

/// The award: the titulaire by SIRET, the amounts, the DECP facts the form asks.
pub(super) async fn award(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    coordinator_step(&on, &key, &fields, "attribue", award_control, async |manager, g| {
        let input = award_input(&fields, &g.terms.lots);
        award::award(&on.state.ctx(&manager.actor), g, input).await
    })
    .await
}

/// Generates a document (`type`): a new version when it changed.
pub(super) async fn generate(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let kind = Kind::parse(fields.get("type"));
    coordinator_step(
        &on,
        &key,
        &fields,
        "document",
        |_| "type-document".to_string(),
        async |manager, g| match kind {
            Some(kind) => documents::generate(&on.state.ctx(&manager.actor), g, kind).await,
            None => Err(Problem::invalid_field("type", "choisissez le document à générer")),
        },
    )
    .await
}

/// Shares a version with the library (`partage=oui`) or stops sharing it (`non`).
pub(super) async fn share(
    on: On<GroupementsState>,
    Path((key, piece)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let shared = yes_no(&fields, "partage");
    coordinator_step(
        &on,
        &key,
        &fields,
        "partage",
        |_| "documents".to_string(),
        async |manager, g| {
            let doc = domain::version_of(&on.state, g, &piece).await?;
            match shared {
                Some(shared) => documents::set_shared(&on.state.ctx(&manager.actor), g, &doc, shared).await,
                None => Err(Problem::invalid_field("partage", "indiquez s'il faut partager le document")),
            }
        },
    )
    .await
}

/// `POST /groupements/{groupement}/decp/publication`: the coordinator publishes the DECP of the
/// award (fixes its publication date; the members may then download them).
pub(super) async fn publish_decp(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    coordinator_step(
        &on,
        &key,
        &fields,
        "decp-publiees",
        |_| "decp".to_string(),
        async |manager, g| award::publish_decp(&on.state.ctx(&manager.actor), g).await,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euro_amounts_lots_and_keys_are_read_from_the_form() {
        assert_eq!(cents("987 654,32"), Some(98_765_432));
        assert_eq!(cents("12.5 €"), Some(1250));
        assert_eq!((cents("1,234"), cents("")), (None, None));
        let lots = lots_of("Solution ENT\n\n Assistance ");
        assert_eq!((lots.len(), lots[1].number, lots[1].title.as_str()), (2, 2, "Assistance"));
        let fields = Fields(vec![("poids-eleves".into(), "70".into()), ("poids-egal".into(), "30".into())]);
        assert_eq!(
            cost_key_of(&fields),
            vec![KeyPart { basis: Basis::Pupils, weight: 70 }, KeyPart { basis: Basis::Equal, weight: 30 }]
        );
    }
}
