//! The document of an avenant, from edition 2 of the text (migration 0059): « Avenant n° N à la
//! convention … », between the avenant's parties; a « Vu » and a préambule that cite the
//! convention it amends (title, reference, parties, date of signature and of effect, the
//! avenants before it); « Objet de l'avenant », the differences between that convention and the
//! avenant as the model holds them (parties, échéance, covered schools, parameters, cost shares),
//! nothing else; the amended stipulations as they now read; « Les autres stipulations de la
//! convention demeurent inchangées »; the avenant's own date of effect; the signatures; and the
//! consolidated text as an annex. An avenant of edition 1 keeps the text it was signed with
//! (the convention restated, `document::convention_body`). From edition 3 the annex is the
//! convention as amended, under its own reference and dates (« Texte consolidé de la convention
//! … telle que modifiée par l'avenant n° N »); edition 2 keeps its annex, dated from the avenant.

use super::document::{
    amended_value, clause_context, costs_table, designation, duration_in, label_in, model_vu_lines, parties_table,
    percent_text, schools_table, share_item, signature_section, step_day, stipulations, vu_lines, CEILING_EDITION,
    FIGURES_EDITION,
};
use super::model::{ConventionModel, ParameterSpec};
use super::processing::{self, AnnexChanges};
use super::renewal::{renewals, Renewal};
use super::{cost_shares, read_convention, Convention, CostShareView, Party};
use ent_documents::documents::{Block, Document, Section};
use ent_kernel::clock::french_date;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::naming;
use ent_platform::registry::OrgRef;
use serde_json::{Map, Value};
use sqlx::AnyConnection;

/// The edition of the text a convention drafted now is written in (`conventions.document_edition`):
/// 2 cites the amended convention in an avenant ([`CITING_EDITION`]); 3 consolidates the annex
/// ([`CONSOLIDATED_EDITION`]), prints « Caractéristiques » money in euros
/// (`document::EUROS_EDITION`) and agrees the authority ([`AUTHORITY_EDITION`]); 4 (migration
/// 0063) sets the text in French typography (`document::TYPOGRAPHY_FROM_EDITION`), prints a
/// parameter's date and percentage in French (`document::FRENCH_VALUES_EDITION`) and
/// consolidates a renewed convention at its signed term, stating the term in force
/// ([`RENEWED_TERM_EDITION`]); 5 (migration 0064) shows the directory's names as French
/// typography writes them (`document::DISPLAY_NAMES_EDITION`), caps a breach's notification at
/// 48 hours (`document::BREACH_DEADLINE_EDITION`), lists an école's categories of persons without
/// overlap (`document::SCHOOL_SUBJECTS_EDITION`), has a school sign « Fait à » its commune
/// (`document::SCHOOL_PLACE_EDITION`) and an avenant's subtitle name it by its reference
/// ([`REFERENCE_SUBTITLE_EDITION`]); 6 (migration 0065) words the operative text as a legal act
/// does (`document::WORDING_EDITION`: numbers in letters, « l'académie de Créteil », no
/// « habilité(e) », « le membre du groupement », one parenthesis on a sensitive datum); 7
/// (migration 0067) writes durations and time limits in letters and counts with their thousands
/// separated, states the académie's money share of a bipartite (base, ceiling, payment) and the
/// convention constitutive's legal basis, single member and art. 11 (`document::FIGURES_EDITION`);
/// 8 (migration 0069) cites the amended convention « prenant effet le … » whatever the day
/// ([`NEUTRAL_EFFECT_EDITION`]), states the académie's ceiling in letters and figures, TTC,
/// prorated for an incomplete school year and changed by avenant for the payments from its date
/// of effect, and a notice period as « 3 mois » (`document::CEILING_EDITION`); 9 (migration 0070)
/// states that ceiling among the « Caractéristiques » as art. 4 does, TTC, with the prorated
/// ceiling of an incomplete first or last school year (`document::PRORATED_CEILING_EDITION`);
/// 10 (migration 0071) has an avenant change the services of the art. 28 annex
/// ([`ANNEX_CHANGES_EDITION`]), a tripartite's article 5 state the académie's money share as the
/// bipartite's article 4 does (`document::TRIPARTITE_CEILING_EDITION`), and the art. 28 annex list
/// the second degré's persons and data once and name the ENT it covers
/// (`document::ANNEX_ONCE_EDITION`); 11 (migration 0074) has the bipartite's article 4 state the
/// proration of the académie's ceiling to the cent below, in the tripartites' wording
/// (`document::BIPARTITE_ROUNDING_EDITION`); 12 (migration 0078, domain review of the tripartites
/// and the bipartite read end to end) names the art. 28 sub-processors in one clause
/// (`document::SUBPROCESSORS_CLAUSE_EDITION`), labels parameters by the party as the text
/// designates it (`document::LABELS_EDITION`), designates the EPLE by its executive and cites the
/// article of the collectivité de rattachement party (`document::EPLE_EDITION`), and states the
/// shared cost toutes taxes comprises, the excess over the ceiling and the second degré
/// établissement's share (`document::TTC_SHARES_EDITION`); the list of its changes is in the
/// header of migration 0078.
/// An edition that has shipped never changes its output: a signed text re-derives its hash from it.
pub const CURRENT_EDITION: i64 = 12;

/// The first edition whose avenant changes the services its art. 28 annex lists, and the types of
/// data and categories of persons that follow from them, as a stipulation (domain review 41, F2;
/// art. 28.3 RGPD: the contract sets out the nature and purpose of the processing and the types
/// of data): its « Objet » names the services added to and removed from the annex the amended
/// convention signed ([`Amended::signed_services`]), its « Stipulations modifiées » restate
/// the annex's services, data and persons, and such an avenant may be submitted
/// ([`require_changes`]). Before, an avenant compared the stipulations of the text alone, and one
/// whose only change was its annex said it modified nothing, and was refused.
pub const ANNEX_CHANGES_EDITION: i64 = 10;

const _: () =
    assert!(ANNEX_CHANGES_EDITION > 9 && ANNEX_CHANGES_EDITION <= CURRENT_EDITION, "edition 9 keeps its bytes");

/// The first edition whose avenant cites the convention it amends, and the avenants before it,
/// as « prenant effet le … » (préambule: « elle prend effet le … », the present of its own
/// art. « Durée »), whatever the day (domain review 39, G1). Before, the tense was chosen by
/// comparing that date with the avenant's own start ([`Cited::pending_for`]), which said
/// « est entrée en vigueur » of a convention not yet in force when the avenant was signed. The
/// day the text is submitted or signed is not held by the text: a tense judged on it would not
/// re-derive the hash from the convention's data, and would be wrong on the next day of reading.
pub const NEUTRAL_EFFECT_EDITION: i64 = 8;

const _: () =
    assert!(NEUTRAL_EFFECT_EDITION > 7 && NEUTRAL_EFFECT_EDITION <= CURRENT_EDITION, "edition 7 keeps its bytes");

/// The first edition whose avenant is subtitled « Avenant CONV-… » (its reference) under its
/// numbered title: its stored title is that title from then on (`workflow::draft::amend`), which
/// the subtitle repeated; before, the subtitle is the stored title (« Avenant – … »).
const REFERENCE_SUBTITLE_EDITION: i64 = 5;

/// The first edition in which « dûment habilité » agrees with the representative's civility
/// (`signatories::civility_feminine`; « habilité(e) » when the name gives none), an avenant's
/// « Vu » cites the délibération authorising the avenant itself (and the one that authorised the
/// convention it amends as such), and it cites a convention not yet in force when it is drafted
/// as taking effect rather than in force.
pub const AUTHORITY_EDITION: i64 = 3;

/// The first edition in which an avenant's document cites the convention it amends.
const CITING_EDITION: i64 = 2;

/// The first edition whose consolidated annex is the convention as amended, under its own
/// reference and dates, rather than the avenant restated from its own date of effect.
const CONSOLIDATED_EDITION: i64 = 3;

/// The first edition whose consolidated annex of a tacitly renewed convention states its
/// duration as signed (its clauses from its start to its échéance before the first renewal) and
/// the term in force after its renewals, rather than one duration from its start to the renewed
/// term (« 72 mois » for 36 months renewed once).
const RENEWED_TERM_EDITION: i64 = 4;

/// Whether `conv` is an avenant whose document cites the convention it amends.
pub fn cites_amended(conv: &Convention) -> bool {
    conv.amends_id.is_some() && conv.document_edition >= CITING_EDITION
}

/// A convention of an avenant's lineage, as its document cites it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Cited {
    pub reference: String,
    pub title: String,
    /// `YYYY-MM-DD`.
    pub start_date: String,
    /// When it was signed by its last party (UTC timestamp), if recorded.
    pub signed_at: Option<String>,
    amends_id: Option<String>,
}

impl Cited {
    /// Whether it takes effect no earlier than the avenant `by` (from [`AUTHORITY_EDITION`]): it
    /// was signed, not in force, when `by` was drafted, and is cited as taking effect.
    /// From [`NEUTRAL_EFFECT_EDITION`], always: the text says its date of effect, not a tense.
    fn pending_for(&self, by: &Convention) -> bool {
        by.document_edition >= NEUTRAL_EFFECT_EDITION
            || (by.document_edition >= AUTHORITY_EDITION && self.start_date >= by.start_date)
    }

    /// « entrée en vigueur le … » (« entré » for an avenant: `feminine` false), or « prenant
    /// effet le … » when it is not in force before the avenant `by` ([`Cited::pending_for`]).
    fn effect(&self, feminine: bool, by: &Convention) -> String {
        let day = french_date(&self.start_date);
        match self.pending_for(by) {
            true => format!("prenant effet le {day}"),
            false => format!("entré{} en vigueur le {day}", if feminine { "e" } else { "" }),
        }
    }

    /// « signée le 12 juillet 2026 », or « entrée en vigueur le … » when its signature is not recorded.
    fn dated(&self) -> String {
        match &self.signed_at {
            Some(at) => format!("signée le {}", french_date(&step_day(at))),
            None => format!("entrée en vigueur le {}", french_date(&self.start_date)),
        }
    }
}

/// What an avenant's document is written from besides the avenant.
#[derive(Debug, Clone)]
pub struct Amended {
    /// The convention it amends, in force when it was drafted: the initial convention, or the
    /// last avenant that came into force. Its stipulations are what the avenant changes.
    pub previous: Convention,
    /// The initial convention, then each avenant that came into force after it, up to `previous`.
    pub lineage: Vec<Cited>,
    /// The tacit renewals of the conventions of the lineage, oldest first.
    pub renewals: Vec<Renewal>,
    /// The names of the services the art. 28 annex of `previous` lists as it was signed (its
    /// latest frozen text, `processing::annex_service_names`); `None` when it has no frozen text
    /// or no such annex. What an avenant of [`ANNEX_CHANGES_EDITION`] compares its annex with.
    pub signed_services: Option<Vec<String>>,
}

impl Amended {
    /// The avenant's number: one more than the avenants before it in force.
    pub fn number(&self) -> usize {
        self.lineage.len()
    }

    fn initial(&self) -> &Cited {
        &self.lineage[0]
    }

    /// What an avenant of `edition` cites, its names as that edition shows them
    /// (`document::shown_in`): the convention it amends, and the titles of its lineage.
    pub(super) fn shown_in(&self, edition: i64) -> std::borrow::Cow<'_, Amended> {
        if edition < super::document::DISPLAY_NAMES_EDITION {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut shown = self.clone();
        shown.previous = super::document::shown_in(&self.previous, edition).into_owned();
        shown.lineage.iter_mut().for_each(|cited| cited.title = naming::display_name(&cited.title));
        std::borrow::Cow::Owned(shown)
    }
}

/// The most avenants a lineage is read back through (a guard against a cycle in the data).
const MAX_LINEAGE: usize = 500;

/// What the document of `conv` (of `model`, as every convention of its lineage) cites of the
/// convention it amends, read through `conn`; `None` unless [`cites_amended`].
pub async fn amended_of(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<Option<Amended>, Problem> {
    let Some(previous_id) = conv.amends_id.as_deref().filter(|_| cites_amended(conv)) else { return Ok(None) };
    let lost =
        || Problem::new(ProblemKind::Internal, format!("the convention avenant {} amends is gone", conv.reference));
    let mut previous =
        read_convention(&mut *conn, std::slice::from_ref(model), previous_id, false).await?.ok_or_else(lost)?;
    let frozen = super::frozen::latest(&mut *conn, &previous.id).await?;
    if let Some(frozen) = &frozen {
        named_as_signed(frozen, &mut previous);
    }
    let signed_services = frozen.and_then(|f| super::processing::annex_service_names(&f.body));
    let (lineage, renewals) = lineage_of(conn, &previous.id).await?;
    Ok(Some(Amended { previous, lineage, renewals, signed_services }))
}

/// The lineage of the convention `id` (the initial convention, then each avenant in force after
/// it, up to `id`) and their tacit renewals, oldest first.
async fn lineage_of(conn: &mut AnyConnection, id: &str) -> Result<(Vec<Cited>, Vec<Renewal>), Problem> {
    let lost = || Problem::new(ProblemKind::Internal, format!("a convention of the lineage of {id} is gone"));
    let (mut lineage, mut renewed) = (Vec::new(), Vec::new());
    let mut next = Some(id.to_string());
    while let Some(id) = next.take().filter(|_| lineage.len() < MAX_LINEAGE) {
        let cited: Cited =
            sqlx::query_as("SELECT reference, title, start_date, signed_at, amends_id FROM conventions WHERE id = $1")
                .bind(&id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(lost)?;
        renewed.extend(renewals(&mut *conn, &id).await?);
        next = cited.amends_id.clone();
        lineage.push(cited);
    }
    lineage.reverse();
    renewed.sort_by(|a, b| a.previous_end.cmp(&b.previous_end));
    Ok((lineage, renewed))
}

/// « Avenant n° N à la convention « … » (CONV-…, signée le …) »: the title of the avenant whose
/// convention amended has `lineage` (its number, one more than the avenants before it).
fn numbered_title(lineage: &[Cited]) -> String {
    let initial = &lineage[0];
    format!(
        "Avenant n° {} à la convention « {} » ({}, {})",
        lineage.len(),
        initial.title,
        initial.reference,
        initial.dated()
    )
}

/// The title a new avenant of `amended` (the convention in force it amends) is stored under: its
/// document's title ([`numbered_title`]), the initial convention's title shown as the current
/// edition shows names (`naming::display_name`).
pub async fn new_title(conn: &mut AnyConnection, amended: &Convention) -> Result<String, Problem> {
    let (mut lineage, _) = lineage_of(conn, &amended.id).await?;
    if lineage.is_empty() {
        return Err(Problem::new(ProblemKind::Internal, format!("the convention {} is gone", amended.reference)));
    }
    lineage[0].title = naming::display_name(&lineage[0].title);
    Ok(numbered_title(&lineage))
}

/// `conv`'s parties named as its `frozen` text names them (its latest version, the one signed):
/// a party renamed in the registry since is cited under the name it signed under, as that text
/// reads, never under a name the signed text does not hold.
fn named_as_signed(frozen: &super::frozen::Frozen, conv: &mut Convention) {
    for party in &mut conv.parties {
        if let Some(name) = frozen.party_names.get(&party.org.id) {
            party.org.name.clone_from(name);
        }
    }
}

/// The warning an avenant answers with while it moves the term of the convention it amends
/// (domain review 38, G4): « L'échéance de la convention passe du 4 décembre 2029 au 3 janvier
/// 2030. »; `None` for a convention that amends none, or keeps its term.
pub async fn term_warning(conn: &mut AnyConnection, conv: &Convention) -> Result<Option<String>, Problem> {
    let Some(amended) = conv.amends_id.as_deref() else { return Ok(None) };
    let end: Option<String> = sqlx::query_scalar("SELECT end_date FROM conventions WHERE id = $1")
        .bind(amended)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(end.filter(|end| *end != conv.end_date).map(|end| {
        format!(
            "L'échéance de la convention passe du {} au {} : l'avenant modifie la durée de la convention.",
            french_date(&end),
            french_date(&conv.end_date)
        )
    }))
}

/// What an avenant changes of a money share whose model caps it (a money parameter
/// `required_when_positive` by the share: the bipartite's `plafond_participation_academie` of
/// `part_academie`): whether the share changes, whether its ceiling does. `None` when neither.
fn funding_changed(
    model: &ConventionModel,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Option<Funding> {
    let changed = |key: &str| !same_value(before.get(key), after.get(key));
    let capped = model.parameters.iter().filter_map(|spec| Some((spec, spec.required_when_positive.as_deref()?)));
    let funding = capped
        .map(|(ceiling, share)| Funding { share: changed(share), ceiling: changed(&ceiling.key) })
        .fold(Funding::default(), |a, b| Funding { share: a.share || b.share, ceiling: a.ceiling || b.ceiling });
    (funding.share || funding.ceiling).then_some(funding)
}

/// Which of a capped money share and its ceiling an avenant changes ([`funding_changed`]).
#[derive(Debug, Default, Clone, Copy)]
struct Funding {
    share: bool,
    ceiling: bool,
}

/// The warning an avenant answers with while it changes a capped money share or its ceiling
/// ([`funding_changed`]) from a day other than 1 September (domain review 39, G2): the school
/// year's payments then fall under two shares or ceilings, each for its months; `None` otherwise.
pub async fn funding_warning(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    conv: &Convention,
) -> Result<Option<String>, Problem> {
    let Some(amended) = conv.amends_id.as_deref() else { return Ok(None) };
    if conv.start_date.get(5..) == Some("09-01") {
        return Ok(None);
    }
    let Ok(model) = super::find_model(models, &conv.model_id, Some(conv.model_version)) else { return Ok(None) };
    let before: Option<String> = sqlx::query_scalar("SELECT parameters FROM conventions WHERE id = $1")
        .bind(amended)
        .fetch_optional(&mut *conn)
        .await?;
    let before: Map<String, Value> = before.and_then(|b| serde_json::from_str(&b).ok()).unwrap_or_default();
    let Some(funding) = funding_changed(model, &before, &conv.parameters) else { return Ok(None) };
    let what = match (funding.share, funding.ceiling) {
        (true, true) => "la part et le plafond annuel de la participation",
        (true, false) => "la part de la participation",
        _ => "le plafond annuel de la participation",
    };
    Ok(Some(format!(
        "L'avenant modifie {what} et prend effet le {}, en cours d'année scolaire : pour cette année scolaire, \
         les paiements effectués avant cette date restent régis par la convention qu'il modifie et le plafond est \
         calculé mois par mois (dispositions financières de la convention) ; une prise d'effet au 1er septembre \
         évite ce partage.",
        french_date(&conv.start_date)
    )))
}

/// What an avenant changes in the convention it amends, as the model holds it.
struct Changes<'a> {
    added: Vec<&'a Party>,
    removed: Vec<&'a Party>,
    /// The échéance (before, after), when it moves.
    end: Option<(&'a str, &'a str)>,
    schools_added: Vec<&'a OrgRef>,
    schools_removed: Vec<&'a OrgRef>,
    /// Each parameter that changes, but the cost shares' (the shares say who pays): (its
    /// specification, before, after).
    parameters: Vec<(&'a ParameterSpec, Option<&'a Value>, Option<&'a Value>)>,
    /// Each cost share of a party to both that changes: (after, the percent before).
    shares: Vec<(CostShareView, f64)>,
    /// Whether the cost sharing's table reads otherwise (a share changed, or a party came or left).
    costs_changed: bool,
    /// A capped money share or its ceiling that changes ([`funding_changed`]).
    funding: Option<Funding>,
    /// What changes of the art. 28 annex, from [`ANNEX_CHANGES_EDITION`] (`None` when nothing
    /// does, or before that edition, or when the amended convention's signed annex is unknown).
    annex: Option<AnnexChanges>,
}

impl<'a> Changes<'a> {
    fn between(model: &'a ConventionModel, amended: &'a Amended, after: &'a Convention) -> Changes<'a> {
        let before = &amended.previous;
        let same_party = |a: &Party, b: &Party| a.key == b.key && a.org.id == b.org.id;
        let missing_from = |these: &'a [Party], those: &'a [Party]| -> Vec<&'a Party> {
            these.iter().filter(|p| !those.iter().any(|q| same_party(p, q))).collect()
        };
        let schools_missing_from = |these: &'a [OrgRef], those: &'a [OrgRef]| -> Vec<&'a OrgRef> {
            these.iter().filter(|s| !those.iter().any(|t| t.id == s.id)).collect()
        };
        let share_keys: Vec<&str> = model.cost_sharing.iter().filter_map(|c| c.share_parameter.as_deref()).collect();
        let parameters = model
            .parameters
            .iter()
            .filter(|spec| spec.key != "start_date" && !share_keys.contains(&spec.key.as_str()))
            .map(|spec| (spec, before.parameters.get(&spec.key), after.parameters.get(&spec.key)))
            .filter(|(_, old, new)| !same_value(*old, *new))
            .collect();
        let (shares_before, shares_after) = (cost_shares(model, before), cost_shares(model, after));
        let same_line =
            |a: &CostShareView, b: &CostShareView| a.party == b.party && a.org.id == b.org.id && a.item == b.item;
        let shares = shares_after
            .iter()
            .filter_map(|new| {
                let old = shares_before.iter().find(|old| same_line(old, new))?;
                (old.percent != new.percent).then(|| (new.clone(), old.percent))
            })
            .collect();
        Changes {
            added: missing_from(&after.parties, &before.parties),
            removed: missing_from(&before.parties, &after.parties),
            end: (before.end_date != after.end_date).then_some((before.end_date.as_str(), after.end_date.as_str())),
            schools_added: schools_missing_from(&after.schools, &before.schools),
            schools_removed: schools_missing_from(&before.schools, &after.schools),
            parameters,
            shares,
            costs_changed: shares_before != shares_after,
            funding: funding_changed(model, &before.parameters, &after.parameters),
            annex: annex_changes(model, amended, after),
        }
    }

    fn parties_changed(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }

    fn schools_changed(&self) -> bool {
        !self.schools_added.is_empty() || !self.schools_removed.is_empty()
    }

    fn is_empty(&self) -> bool {
        !self.parties_changed()
            && self.end.is_none()
            && !self.schools_changed()
            && self.parameters.is_empty()
            && !self.costs_changed
            && self.annex.is_none()
    }

    /// The points « Objet de l'avenant » lists, one a change, in a text of `edition`.
    fn points(&self, model: &ConventionModel, edition: i64) -> Vec<String> {
        let mut points = Vec::new();
        for p in &self.added {
            points.push(format!(
                "l'entrée {} dans la convention, en qualité de « {} »",
                designation(p.org.kind, &p.org.name, edition).of,
                p.label
            ));
        }
        for p in &self.removed {
            let of = designation(p.org.kind, &p.org.name, edition).of;
            points.push(format!("le retrait {of}, partie en qualité de « {} », qui quitte la convention", p.label));
        }
        if let Some((before, after)) = self.end {
            let moved = if after > before { "reportée" } else { "avancée" };
            points.push(format!(
                "l'échéance de la convention, {moved} du {} au {}",
                french_date(before),
                french_date(after)
            ));
        }
        if !self.schools_added.is_empty() {
            points.push(format!("l'ajout aux établissements couverts de : {}", schools_list(&self.schools_added)));
        }
        if !self.schools_removed.is_empty() {
            points.push(format!("le retrait des établissements couverts de : {}", schools_list(&self.schools_removed)));
        }
        for (spec, before, after) in &self.parameters {
            let text = |v: &Value| amended_value(spec, v, edition);
            let now = after.map_or_else(|| "supprimé".to_string(), text);
            let change = match before {
                None if edition >= FIGURES_EDITION => format!("{now} (non fixé auparavant)"),
                None => format!("{now} au lieu de non fixé"),
                Some(was) => format!("{now} au lieu de {}", text(was)),
            };
            points.push(format!("« {} » : {change}", label_in(model, spec, edition)));
        }
        for (share, before) in &self.shares {
            points.push(format!(
                "la part {} dans le coût « {} » : {} au lieu de {}",
                designation(share.org.kind, &share.org.name, edition).of,
                share_item(model, share, edition),
                percent_text(share.percent),
                percent_text(*before)
            ));
        }
        points.extend(self.annex.iter().flat_map(annex_points));
        points
    }

    /// The amended stipulations, as they now read.
    fn stipulations(&self, model: &ConventionModel, conv: &Convention, initial_start: &str) -> Vec<Block> {
        let mut blocks = Vec::new();
        if self.parties_changed() {
            blocks.push(Block::Paragraph("Les parties à la convention sont désormais les suivantes :".into()));
            blocks.push(parties_table(conv));
        }
        if self.end.is_some() {
            blocks.push(Block::Paragraph(format!(
                "La convention prend fin le {}, soit une durée de {} à compter de sa prise d'effet, le {}.",
                french_date(&conv.end_date),
                duration_in(conv.document_edition, initial_start, &conv.end_date),
                french_date(initial_start)
            )));
        }
        if self.schools_changed() {
            blocks.push(Block::Paragraph(if conv.schools.is_empty() {
                "La convention ne couvre plus aucun établissement.".into()
            } else {
                "Les établissements couverts par la convention sont désormais les suivants :".into()
            }));
            if !conv.schools.is_empty() {
                blocks.push(schools_table(conv));
            }
        }
        if !self.parameters.is_empty() {
            blocks.push(Block::Paragraph("Les caractéristiques suivantes de la convention sont ainsi fixées :".into()));
            let fields = self.parameters.iter().map(|(spec, _, after)| {
                let label = label_in(model, spec, conv.document_edition);
                let text = |v: &Value| amended_value(spec, v, conv.document_edition);
                (label, after.map_or_else(|| "sans objet".to_string(), text))
            });
            blocks.push(Block::Fields(fields.collect()));
        }
        if self.costs_changed {
            blocks.push(Block::Paragraph(
                "La répartition des coûts entre les parties est désormais la suivante :".into(),
            ));
            blocks.push(costs_table(model, conv));
        }
        if let Some(funding) = self.funding.filter(|_| conv.document_edition >= CEILING_EDITION) {
            blocks.push(Block::Paragraph(funding_rule(funding)));
        }
        if self.annex.is_some() {
            blocks.push(Block::Paragraph(format!(
                "Les stipulations suivantes de {ANNEX_28} (clauses de sous-traitance) sont désormais ainsi rédigées :"
            )));
            blocks.push(Block::Bullets(processing::processing_items(model, conv).to_vec()));
        }
        blocks
    }
}

/// What the avenant `after` changes of the art. 28 annex of the convention `amended` signed,
/// from [`ANNEX_CHANGES_EDITION`]: `None` before, when that annex is unknown
/// ([`Amended::signed_services`]), or when nothing changes.
fn annex_changes(model: &ConventionModel, amended: &Amended, after: &Convention) -> Option<AnnexChanges> {
    let signed = amended.signed_services.as_deref().filter(|_| after.document_edition >= ANNEX_CHANGES_EDITION)?;
    processing::processor_party(model, &after.parties)?;
    Some(AnnexChanges::between(model, signed, after)).filter(|changes| !changes.is_empty())
}

/// What the annex of article 28 is called in an avenant's « Objet ».
const ANNEX_28: &str = "l'annexe relative à l'article 28 du RGPD";

/// The points of « Objet de l'avenant » for what `changes` of the art. 28 annex: « services
/// ajoutés à l'annexe relative à l'article 28 du RGPD : Visioconférence ; Exercices et parcours
/// (Moodle) », then the services removed, the types of data and categories of persons added and
/// removed, each agreed with its number (« service ajouté », « catégorie … retirée »).
fn annex_points(changes: &AnnexChanges) -> Vec<String> {
    // (the list, its noun in the singular and the plural, whether it is feminine)
    let lists = [
        (&changes.services, "service", "services", false),
        (&changes.data, "type de données", "types de données", false),
        (&changes.subjects, "catégorie de personnes concernées", "catégories de personnes concernées", true),
    ];
    let mut points = Vec::new();
    for (change, one, many, feminine) in lists {
        for (items, verb, to) in [(&change.added, "ajouté", "à"), (&change.removed, "retiré", "de")] {
            if items.is_empty() {
                continue;
            }
            let plural = items.len() > 1;
            let noun = if plural { many } else { one };
            let agreed = format!("{verb}{}{}", if feminine { "e" } else { "" }, if plural { "s" } else { "" });
            points.push(format!("{noun} {agreed} {to} {ANNEX_28} : {}", items.join(" ; ")));
        }
    }
    points
}

/// What a text of [`CEILING_EDITION`] says, among an avenant's « Stipulations modifiées », of
/// the payments a changed money share or ceiling applies to (domain review 39, G2), as the
/// bipartite's art. 4 provides it.
fn funding_rule(funding: Funding) -> String {
    let (what, applies) = match (funding.share, funding.ceiling) {
        (true, true) => ("La part et le plafond annuel de la participation ainsi fixés", "s'appliquent"),
        (true, false) => ("La part de la participation ainsi fixée", "s'applique"),
        _ => ("Le plafond annuel de la participation ainsi fixé", "s'applique"),
    };
    let mut rule = format!(
        "{what} {applies} aux paiements effectués par la collectivité à compter de la prise d'effet du présent \
         avenant ; les paiements effectués auparavant demeurent régis par les stipulations antérieures."
    );
    if funding.ceiling {
        rule.push_str(
            " Pour l'année scolaire au cours de laquelle le présent avenant prend effet, le plafond est la somme des \
             douzièmes de l'ancien plafond pour les mois couverts dont le 15 précède cette prise d'effet et des \
             douzièmes du nouveau plafond pour les autres mois couverts.",
        );
    }
    rule
}

/// Whether two parameter values are the same (a number whichever way it was written).
fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Schools as a list: « École A (UAI 0940176F), École B (UAI 0940177G) ».
fn schools_list(schools: &[&OrgRef]) -> String {
    schools.iter().map(|s| format!("{} (UAI {})", s.name, s.code)).collect::<Vec<_>>().join(", ")
}

/// The avenants before `conv`, as cited: « l'avenant n° 1 (CONV-…) entré en vigueur le … ».
fn earlier_avenants(amended: &Amended, conv: &Convention) -> Option<String> {
    let avenants: Vec<String> = amended.lineage[1..]
        .iter()
        .enumerate()
        .map(|(i, a)| format!("l'avenant n° {} ({}) {}", i + 1, a.reference, a.effect(false, conv)))
        .collect();
    (!avenants.is_empty()).then(|| naming::and_list(&avenants))
}

/// The convention amended as its « Vu » cites it: « la convention « T » (CONV-…), signée le …,
/// entrée en vigueur le …, modifiée par l'avenant n° 1 (CONV-…) entré en vigueur le … ».
fn citation(amended: &Amended, conv: &Convention) -> String {
    let initial = amended.initial();
    let mut text = format!("la convention « {} » ({}), {}", initial.title, initial.reference, initial.dated());
    if initial.signed_at.is_some() {
        text.push_str(&format!(", {}", initial.effect(true, conv)));
    }
    if let Some(avenants) = earlier_avenants(amended, conv) {
        text.push_str(&format!(", modifiée par {avenants}"));
    }
    text
}

/// The préambule's account of the convention amended: between whom it was concluded, when it was
/// signed and took effect, the avenants before this one.
fn history(amended: &Amended, conv: &Convention) -> String {
    let initial = amended.initial();
    let parties: Vec<String> = amended
        .previous
        .parties
        .iter()
        .map(|p| designation(p.org.kind, &p.org.name, conv.document_edition).article)
        .collect();
    let effect = match initial.pending_for(conv) {
        true => format!("prend effet le {}", french_date(&initial.start_date)),
        false => format!("est entrée en vigueur le {}", french_date(&initial.start_date)),
    };
    let dates = match &initial.signed_at {
        Some(at) => format!("Signée le {}, elle {effect}", french_date(&step_day(at))),
        None => format!("Elle {effect}"),
    };
    let modified =
        earlier_avenants(amended, conv).map(|a| format!(" ; elle a été modifiée par {a}")).unwrap_or_default();
    format!(
        "La convention « {} » ({}) a été conclue entre {}. {dates}{modified}.",
        initial.title,
        initial.reference,
        naming::and_list(&parties)
    )
}

/// `points` as the items of a list in a French text: each but the last ends with « ; », the last with « . ».
fn punctuated(points: Vec<String>) -> Vec<String> {
    let last = points.len().saturating_sub(1);
    points.into_iter().enumerate().map(|(i, p)| format!("{p}{}", if i == last { "." } else { " ;" })).collect()
}

/// An article of the avenant, numbered from 1 as pushed.
fn article(sections: &mut Vec<Section>, numbered: &mut usize, title: &str, blocks: Vec<Block>) {
    *numbered += 1;
    sections.push(Section { heading: format!("Article {numbered} – {title}"), blocks });
}

/// The « Vu » lines of the avenant `conv`: the model's, then its parties' acts; from
/// [`AUTHORITY_EDITION`] the act authorising the avenant itself, and the one that authorised the
/// convention it amends cited as such ([`signatories::avenant_vu_lines`]).
fn avenant_vu_lines(
    model: &ConventionModel,
    conv: &Convention,
    amended: &Amended,
    context: &tera::Context,
) -> Result<Vec<String>, Problem> {
    if conv.document_edition < AUTHORITY_EDITION {
        return vu_lines(model, conv, context);
    }
    let mut vu = model_vu_lines(model, context)?;
    vu.extend(super::signatories::avenant_vu_lines(conv, &amended.previous, &previous_named(amended)));
    Ok(vu)
}

/// The convention an avenant amends, as its « Vu » names it: « la convention CONV-… », or
/// « l'avenant n° 1 (CONV-…) » when it amends the text an earlier avenant made.
fn previous_named(amended: &Amended) -> String {
    match amended.lineage.len() {
        0 | 1 => format!("la convention {}", amended.previous.reference),
        n => format!("l'avenant n° {} ({})", n - 1, amended.previous.reference),
    }
}

/// Refuses the submission of an avenant that changes nothing in the convention it amends (422):
/// its « Objet » would say it modifies nothing. `None` (not an avenant citing its convention): Ok.
pub fn require_changes(model: &ConventionModel, conv: &Convention, amended: Option<&Amended>) -> Result<(), Problem> {
    let Some(amended) = amended else { return Ok(()) };
    if !Changes::between(model, amended, conv).is_empty() {
        return Ok(());
    }
    let annex = match conv.document_edition >= ANNEX_CHANGES_EDITION {
        true => format!(", services de {ANNEX_28}"),
        false => String::new(),
    };
    Err(Problem::invalid_field(
        "avenant",
        format!(
            "aucune modification : l'avenant {} reprend la convention {} à l'identique ; modifiez ce qu'il change \
             (parties, échéance, établissements couverts, caractéristiques, répartition des coûts{annex}) avant de \
             le soumettre à signature",
            conv.reference, amended.previous.reference
        ),
    ))
}

/// The document of the avenant `conv` (of `model`) amending `amended`.
pub(super) fn body(model: &ConventionModel, conv: &Convention, amended: &Amended) -> Result<Document, Problem> {
    let initial = amended.initial();
    let number = amended.number();
    let changes = Changes::between(model, amended, conv);
    let context = clause_context(model, conv);
    let cited = citation(amended, conv);
    let mut sections = vec![super::document::between_section(model, conv)];
    let mut vu = avenant_vu_lines(model, conv, amended, &context)?;
    vu.push(format!("Vu {cited}"));
    sections.push(Section::new("Vu").bullets(vu));
    sections.push(Section {
        heading: "Préambule".into(),
        blocks: vec![
            Block::Paragraph(history(amended, conv)),
            Block::Paragraph(format!(
                "Les parties sont convenues de la modifier par le présent avenant n° {number}, dans les conditions \
                 qui suivent."
            )),
            Block::Paragraph("Il est convenu ce qui suit.".into()),
        ],
    });
    let mut numbered = 0;
    let objet = if changes.is_empty() {
        vec![Block::Paragraph(format!(
            "Le présent avenant ne modifie aucune stipulation de la convention {} : il en reprend le texte à l'identique.",
            initial.reference
        ))]
    } else {
        vec![
            Block::Paragraph(format!(
                "Le présent avenant a pour objet de modifier la convention {} sur les points suivants :",
                initial.reference
            )),
            Block::Bullets(punctuated(changes.points(model, conv.document_edition))),
        ]
    };
    article(&mut sections, &mut numbered, "Objet de l'avenant", objet);
    if !changes.is_empty() {
        let blocks = changes.stipulations(model, conv, &initial.start_date);
        article(&mut sections, &mut numbered, "Stipulations modifiées", blocks);
    }
    let unchanged =
        "Les autres stipulations de la convention demeurent inchangées et continuent de produire leurs effets.";
    article(&mut sections, &mut numbered, "Autres stipulations", vec![Block::Paragraph(unchanged.into())]);
    let effect = format!(
        "Le présent avenant prend effet le {}, ou, s'il n'est pas signé par toutes les parties à cette date, le jour \
         de la dernière signature. La convention, telle qu'il la modifie, prend fin le {}.",
        french_date(&conv.start_date),
        french_date(&conv.end_date)
    );
    article(&mut sections, &mut numbered, "Prise d'effet", vec![Block::Paragraph(effect)]);
    sections.push(signature_section(conv));
    sections.extend(consolidated(model, conv, amended, numbered)?);
    Ok(Document {
        title: numbered_title(&amended.lineage),
        subtitle: Some(match conv.document_edition >= REFERENCE_SUBTITLE_EDITION {
            true => format!("Avenant {}", conv.reference),
            false => conv.title.clone(),
        }),
        reference: Some(conv.reference.clone()),
        sections,
    })
}

/// The annex: the consolidated text of the convention as `conv` amends it. From
/// [`CONSOLIDATED_EDITION`], the convention's own text, under its own reference, from its own
/// date of effect (« telle que modifiée par l'avenant n° N »), the avenant's date of effect
/// left to its article `effect_article`; before, the stipulations as the avenant reads them
/// (its own reference and date of effect), as edition 2 was signed.
fn consolidated(
    model: &ConventionModel,
    conv: &Convention,
    amended: &Amended,
    effect_article: usize,
) -> Result<Vec<Section>, Problem> {
    let initial = amended.initial();
    let mut text_of = conv.clone();
    let mut clauses_of = None;
    let opening = if conv.document_edition >= CONSOLIDATED_EDITION {
        let by = amended_by(amended.number());
        text_of.reference = initial.reference.clone();
        text_of.start_date = initial.start_date.clone();
        let mut said = format!(
            "Le texte qui suit est celui de la convention « {} » ({}), {}, telle que modifiée par {by}. Les dates \
                 qu'il indique sont celles de la convention ; le présent avenant prend effet à la date fixée par son \
                 article {effect_article}.",
            initial.title,
            initial.reference,
            initial.dated()
        );
        if let Some((signed, renewed)) = renewed_term(conv, amended, &text_of) {
            said.push_str(&format!(" {renewed}"));
            clauses_of = Some(signed);
        }
        Section::new(format!(
            "Annexe – Texte consolidé de la convention {} telle que modifiée par {by}",
            initial.reference
        ))
        .paragraph(said)
    } else {
        Section::new("Annexe – Texte consolidé de la convention").paragraph(format!(
            "Le texte de la convention {}, tel que le modifie le présent avenant, est le suivant.",
            initial.reference
        ))
    };
    let text = stipulations(model, &text_of, &clause_context(model, clauses_of.as_ref().unwrap_or(&text_of)))?;
    let consolidated =
        text.into_iter().map(|s| Section { heading: format!("{CONSOLIDATED_HEADING}{}", s.heading), ..s });
    Ok(std::iter::once(opening).chain(consolidated).collect())
}

/// What opens the heading of each section of an avenant's consolidated text (« Texte consolidé –
/// Annexe – … »), from [`CITING_EDITION`].
pub const CONSOLIDATED_HEADING: &str = "Texte consolidé – ";

/// For the consolidated text `text_of` of a tacitly renewed convention (from
/// [`RENEWED_TERM_EDITION`]): the convention its clauses read, from its start to its échéance
/// before its first renewal (the duration signed, and renewed for), and what the annex says of
/// the term in force (« Reconduite tacitement à son échéance du 31 août 2029, elle est en vigueur
/// jusqu'au 31 août 2032. »); its « Caractéristiques » keep the term in force. `None` when it was
/// never renewed.
fn renewed_term(conv: &Convention, amended: &Amended, text_of: &Convention) -> Option<(Convention, String)> {
    let first = amended.renewals.first().filter(|_| conv.document_edition >= RENEWED_TERM_EDITION)?;
    let mut signed = text_of.clone();
    signed.end_date.clone_from(&first.previous_end);
    let ends: Vec<String> = amended.renewals.iter().map(|r| format!("du {}", french_date(&r.previous_end))).collect();
    let its = if ends.len() == 1 { "son échéance" } else { "ses échéances" };
    let renewed = format!(
        "Reconduite tacitement à {its} {}, elle est en vigueur jusqu'au {}.",
        naming::and_list(&ends),
        french_date(&conv.end_date)
    );
    Some((signed, renewed))
}

/// Every avenant up to the `number`th, as the consolidated text names them: « l'avenant n° 1 »,
/// « les avenants n° 1 et 2 », « les avenants n° 1 à 3 ».
fn amended_by(number: usize) -> String {
    match number {
        0 | 1 => "l'avenant n° 1".into(),
        2 => "les avenants n° 1 et 2".into(),
        n => format!("les avenants n° 1 à {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_french_writes_them() {
        assert_eq!(percent_text(12.5), "12,5\u{a0}%");
        assert_eq!(percent_text(80.0), "80\u{a0}%");
        assert!(same_value(Some(&serde_json::json!(2)), Some(&serde_json::json!(2.0))));
        assert!(!same_value(Some(&serde_json::json!(2)), None));
        assert_eq!(punctuated(vec!["a".into(), "b".into()]), vec!["a ;", "b."]);
        assert_eq!(amended_by(1), "l'avenant n° 1");
        assert_eq!(amended_by(2), "les avenants n° 1 et 2");
        assert_eq!(amended_by(3), "les avenants n° 1 à 3");
    }

    /// Domain review 41, F2: the services the annex gains or loses, each noun agreed with its
    /// number and gender.
    #[test]
    fn the_objet_names_what_the_art_28_annex_gains_and_loses_in_agreed_french() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let changes = AnnexChanges {
            services: processing::ListChange {
                added: list(&["Visioconférence", "Exercices et parcours (Moodle)"]),
                removed: list(&["Blog"]),
            },
            data: processing::ListChange { added: list(&["Nom affiché des participants"]), removed: Vec::new() },
            subjects: processing::ListChange { added: Vec::new(), removed: list(&["a", "b"]) },
        };
        assert_eq!(
            annex_points(&changes),
            [
                "services ajoutés à l'annexe relative à l'article 28 du RGPD : Visioconférence ; Exercices et \
                 parcours (Moodle)",
                "service retiré de l'annexe relative à l'article 28 du RGPD : Blog",
                "type de données ajouté à l'annexe relative à l'article 28 du RGPD : Nom affiché des participants",
                "catégories de personnes concernées retirées de l'annexe relative à l'article 28 du RGPD : a ; b",
            ]
        );
    }
}
