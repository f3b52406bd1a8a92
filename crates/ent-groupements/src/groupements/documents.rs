//! The consultation's documents: the presentation note, the règlement de la consultation
//! (RC), the acte d'engagement (AE), the CCAP, the CCTP and the member list (tera templates in `templates/documents/groupements/` → the
//! shared `documents` model → HTML, ODT, PDF), and the BPU/DPGF quantity annex
//! (ODS). Every generation is kept as a version; regenerating an unchanged
//! document returns the latest version instead of adding one. A coordinator
//! may share a version with every coordinator (the library): the documents
//! hold organisations, public council decisions and quantities, never people.

use super::membership::{self, Application, MemberQuantities};
use super::{cctp, consultation, costs};
use super::{Ctx, Groupement};
use chrono::NaiveDate;
use ent_documents::documents::{self, Block, Document, Section};
use ent_documents::documents::{Cell, Sheet, Spreadsheet};
use ent_kernel::clock::{french_date, french_moment, next_working_day, term_end, today_in_france};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::naming;
use ent_kernel::store::{new_id, on_constraint, timestamp, Flag, Store, Tx};
use ent_kernel::store::{page_size, Condition, Page};
use ent_kernel::text_enum;
use ent_kernel::validate;
use ent_platform::catalog::{processed_data, Catalog};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::FromRow;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Presentation note of the groupement (members, expenses, calendar); the convention
    /// constitutive itself is the `groupement-de-commandes` convention.
    Presentation,
    /// Règlement de la consultation: buyer, procedure, consultation file, candidatures and
    /// offers, award criteria, deadlines, remedies.
    Rc,
    /// Acte d'engagement: the buyer for the members, the contractor (blank for the candidate
    /// before the award, the titulaire after), prices, duration, payment, signatures.
    Ae,
    /// Cahier des clauses administratives particulières: form of the accord-cadre and its
    /// maximum, prices and payment, Art. 28 RGPD clauses and liability, penalties.
    Ccap,
    /// Cahier des clauses techniques particulières.
    Cctp,
    /// Members and their council decisions.
    Membres,
    /// BPU/DQE quantity and price annex (spreadsheet).
    Quantites,
}

text_enum!(Kind);

impl Kind {
    /// The kind whose text is `s`; `convention`, the presentation note's former name (stored
    /// versions generated before it was renamed), reads as the presentation note.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "convention" => Some(Kind::Presentation),
            _ => Self::ALL.into_iter().find(|k| k.as_str() == s),
        }
    }

    pub const ALL: [Kind; 7] =
        [Kind::Presentation, Kind::Rc, Kind::Ae, Kind::Ccap, Kind::Cctp, Kind::Membres, Kind::Quantites];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Presentation => "presentation",
            Kind::Rc => "rc",
            Kind::Ae => "ae",
            Kind::Ccap => "ccap",
            Kind::Cctp => "cctp",
            Kind::Membres => "membres",
            Kind::Quantites => "quantites",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Presentation => "Note de présentation du groupement de commandes",
            Kind::Rc => "Règlement de la consultation (RC)",
            Kind::Ae => "Acte d'engagement (AE)",
            Kind::Ccap => "Cahier des clauses administratives particulières (CCAP)",
            Kind::Cctp => "Cahier des clauses techniques particulières (CCTP)",
            Kind::Membres => "Liste des membres du groupement",
            Kind::Quantites => "Annexe quantitative et bordereau des prix (BPU/DQE)",
        }
    }

    /// Whether [`Kind::label`]'s noun is feminine (« la note », « la liste », « l'annexe »), for
    /// its article (`naming::of_title`: « de la note de présentation … », « du règlement … »).
    pub fn feminine(self) -> bool {
        matches!(self, Kind::Presentation | Kind::Membres | Kind::Quantites)
    }

    /// Whether a version of this kind prints the titulaire's unit prices once the groupement is
    /// awarded: the BPU/DQE prices its lines at them, the presentation note each member's own
    /// orders (their quantities × those prices), the CCAP the accord-cadre's maximum and the AE
    /// the titulaire's DQE (the DQE's quantities × those prices).
    pub fn prints_award_prices(self) -> bool {
        matches!(self, Kind::Quantites | Kind::Presentation | Kind::Ccap | Kind::Ae)
    }

    /// Whether this kind is a piece of the consultation file the RC lists (every kind but the
    /// presentation note, the coordinator's note to the members).
    pub fn in_consultation_file(self) -> bool {
        self != Kind::Presentation
    }

    /// Formats a version can be made in.
    pub fn formats(self) -> &'static [&'static str] {
        match self {
            Kind::Quantites => &["ods"],
            _ => &["html", "odt", "pdf"],
        }
    }

    /// The [`Kind::formats`] this server makes: PDF only where a converter is installed
    /// (`documents::pdf_available`), what a version lists.
    pub fn served_formats(self) -> Vec<String> {
        let served = |f: &&&str| **f != "pdf" || documents::pdf_available();
        self.formats().iter().filter(served).map(|f| f.to_string()).collect()
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("presentation", include_str!("../../../../templates/documents/groupements/presentation.txt")),
    ("rc", include_str!("../../../../templates/documents/groupements/rc.txt")),
    ("ae", include_str!("../../../../templates/documents/groupements/ae.txt")),
    ("ccap", include_str!("../../../../templates/documents/groupements/ccap.txt")),
    ("cctp", include_str!("../../../../templates/documents/groupements/cctp.txt")),
    ("membres", include_str!("../../../../templates/documents/groupements/membres.txt")),
];

fn tera() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut tera = tera::Tera::default();
        // Every template (the suffix "" matches all names) escapes its values for the line markup.
        tera.autoescape_on(vec![""]);
        tera.set_escape_fn(markup_escape);
        tera.add_raw_templates(TEMPLATES.iter().copied())
            .unwrap_or_else(|e| panic!("groupement document templates do not compile: {e:?}"));
        tera
    })
}

/// A value inserted into the line markup stays inside its line and its cell: no
/// line break or other control, no cell separator, no field separator, and it
/// cannot open a line as a heading or a bullet.
fn markup_escape(value: &str) -> String {
    let one_line: String = value
        .chars()
        .map(|c| {
            if validate::line_forbids(c) {
                ' '
            } else if c == '|' {
                '¦'
            } else {
                c
            }
        })
        .collect();
    // Repeated: one pass leaves ` :: ` in `a :: :: b`.
    let mut text = one_line;
    while text.contains(" :: ") {
        text = text.replace(" :: ", " : ");
    }
    let opening = text.trim_start();
    if opening.starts_with('#') || opening.starts_with("- ") {
        // A word joiner: invisible, but the line no longer starts with the marker.
        format!("\u{2060}{opening}")
    } else {
        text
    }
}

/// Turns the templates' line markup into sections (see the templates' README).
pub fn sections_from_markup(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |sections: &mut Vec<Section>, paragraph: &mut Vec<&str>| {
        if !paragraph.is_empty() {
            if let Some(s) = sections.last_mut() {
                s.blocks.push(Block::Paragraph(paragraph.join(" ")));
            }
            paragraph.clear();
        }
    };
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(heading) = line.strip_prefix("## ") {
            flush(&mut sections, &mut paragraph);
            sections.push(Section::new(heading.trim()));
            continue;
        }
        if sections.is_empty() {
            sections.push(Section::new(""));
        }
        if line.is_empty() {
            flush(&mut sections, &mut paragraph);
            continue;
        }
        let blocks = &mut sections.last_mut().expect("a section").blocks;
        if let Some(item) = line.strip_prefix("- ") {
            flush_into(blocks, &mut paragraph);
            match blocks.last_mut() {
                Some(Block::Bullets(items)) => items.push(item.trim().to_string()),
                _ => blocks.push(Block::Bullets(vec![item.trim().to_string()])),
            }
        } else if line.starts_with('|') && line.ends_with('|') && line.len() > 1 {
            flush_into(blocks, &mut paragraph);
            let cells: Vec<String> = line[1..line.len() - 1].split('|').map(|c| c.trim().to_string()).collect();
            match blocks.last_mut() {
                Some(Block::Table { rows, .. }) => rows.push(cells),
                _ => blocks.push(Block::Table { header: cells, rows: Vec::new() }),
            }
        } else if let Some((label, value)) = line.split_once(" :: ") {
            flush_into(blocks, &mut paragraph);
            let pair = (label.trim().to_string(), value.trim().to_string());
            match blocks.last_mut() {
                Some(Block::Fields(pairs)) => pairs.push(pair),
                _ => blocks.push(Block::Fields(vec![pair])),
            }
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut sections, &mut paragraph);
    sections.retain(|s| !(s.heading.is_empty() && s.blocks.is_empty()));
    sections
}

fn flush_into(blocks: &mut Vec<Block>, paragraph: &mut Vec<&str>) {
    if !paragraph.is_empty() {
        blocks.push(Block::Paragraph(paragraph.join(" ")));
        paragraph.clear();
    }
}

/// The members' quantities added up: the DQE's.
pub(super) fn totals(members: &[Application]) -> MemberQuantities {
    members.iter().fold(MemberQuantities::default(), |t, m| MemberQuantities {
        schools: t.schools + m.quantities.schools,
        classes: t.classes + m.quantities.classes,
        pupils: t.pupils + m.quantities.pupils,
        teacher_accounts: t.teacher_accounts + m.quantities.teacher_accounts,
        parent_accounts: t.parent_accounts + m.quantities.parent_accounts,
    })
}

/// `text` ended as a sentence, for a template that goes on after it: a final full stop added
/// unless it ends with one (or `!`, `?`, `…`).
fn as_sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with(['.', '!', '?', '…']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// A count as the documents print it, in groups of three (« 1 800 », as amounts are written).
fn count(n: i64) -> String {
    costs::quantity(n * 100)
}

/// The templates' variables: public facts of the groupement and its members.
fn context(catalog: &Catalog, g: &Groupement, members: &[Application], convention_end: Option<&str>) -> tera::Context {
    let total = totals(members);
    let bouquet = catalog.bouquet(&g.terms.bouquet, None);
    let options: Vec<_> = g.terms.options.iter().filter_map(|o| catalog.bouquet(o, None)).collect();
    let services = catalog.market_services(&g.terms.bouquet, &g.terms.options);
    let french = french_date;
    let mut c = tera::Context::new();
    c.insert("reference", &g.reference);
    c.insert("title", &g.title);
    c.insert("object", &g.object);
    c.insert("coordinator", &g.coordinator.name);
    c.insert("coordinator_designation", &naming::of_org(g.coordinator.kind, &g.coordinator.name).article);
    c.insert("object_in_sentence", &as_sentence(&naming::in_sentence(&g.object)));
    c.insert("lots", &g.terms.lots);
    if g.terms.lots.len() > 1 {
        c.insert("lots_content", &lots_content(g, &total, costs::Establishments::of(members)));
    }
    c.insert("support", &g.terms.support);
    c.insert("duration_months", &g.terms.duration_months);
    if let Some(j) = &g.terms.duration_justification {
        c.insert("duration_justification", &as_sentence(j));
    }
    let quantities: Vec<_> = members.iter().map(|m| m.quantities.for_key()).collect();
    let equipped = costs::Establishments::of(members);
    c.insert("cost_key", &super::shares::describe_for(&g.terms.cost_key, &quantities, equipped));
    c.insert("cost_key_warnings", &costs::key_warnings(g, members));
    // No adhesion after the launch (article 2 of the convention constitutive).
    let adhesions = g.adhesions_end();
    c.insert("deadline", &adhesions.words());
    c.insert("adhesions_ended_at_launch", &adhesions.at_launch);
    if let Some(d) = &g.consultation_date {
        c.insert("consultation_date", &french(d));
    }
    // The calendar prints what took place as it took place, the rest as planned.
    if let Some(day) = g.consultation_launched_on() {
        c.insert("consultation_launched", &french(&day.to_string()));
    }
    if let Some(d) = &g.award_planned_date {
        c.insert("award_planned_date", &french(d));
    }
    insert_offers_deadline(&mut c, g);
    insert_threshold(&mut c, g, members);
    if let Some(estimate) = g.terms.estimated_amount_ht_cents {
        c.insert("estimated_amount", &costs::euros(estimate));
    }
    c.insert(
        "bouquet",
        &json!({
            "name": bouquet.map(|b| b.name.clone()).unwrap_or_else(|| g.terms.bouquet.clone()),
            "version": bouquet.map(|b| b.version).unwrap_or(0),
            "description": bouquet.map(|b| b.description.clone()).unwrap_or_default(),
        }),
    );
    c.insert("options", &options.iter().map(|b| json!({ "name": b.name })).collect::<Vec<_>>());
    c.insert(
        "services",
        &services.iter().map(|s| json!({ "name": s.name, "description": s.description })).collect::<Vec<_>>(),
    );
    // The CCTP's single-lot justification lists the services asked, inside its sentence.
    let names: Vec<String> = services.iter().map(|s| naming::in_sentence(&s.name)).collect();
    c.insert("services_in_sentence", &names.join(", "));
    let (data, subjects) = processed_data(services.iter().copied());
    // The écoles' categories of persons as their conventions' annex lists them (no documentaliste),
    // a sensitive datum in one parenthesis citing article 9.
    let subjects = match equipped {
        costs::Establishments::Ecoles => ent_conventions::conventions::processing::school_subjects(subjects),
        _ => subjects,
    };
    let data: Vec<String> = data.iter().map(|d| ent_conventions::conventions::processing::one_parenthesis(d)).collect();
    c.insert("processing", &json!({ "data": data, "subjects": subjects }));
    c.insert("members_count", &members.len());
    insert_convention_end(&mut c, g, convention_end);
    c.insert("establishments", &equipped.words());
    c.insert(
        "totals",
        &json!({
            "schools": count(total.schools), "classes": count(total.classes), "pupils": count(total.pupils),
            "teacher_accounts": count(total.teacher_accounts), "parent_accounts": count(total.parent_accounts),
            "accounts": count(total.accounts()),
        }),
    );
    let rows: Vec<_> = members
        .iter()
        .map(|m| {
            json!({
                "name": m.applicant.name, "code": m.applicant.code, "kind": m.applicant.kind.label(),
                "deliberation_number": m.deliberation_number,
                "deliberation_date": french(&m.deliberation_date),
                "schools": count(m.quantities.schools), "pupils": count(m.quantities.pupils),
                "accounts": count(m.accounts),
            })
        })
        .collect();
    c.insert("members", &rows);
    insert_expenses(&mut c, g, members);
    insert_contract(&mut c, g, &total, equipped);
    c.insert("cctp", &cctp::context(g));
    c.insert("consultation", &consultation::context());
    c.insert("procedure", &g.terms.procedure.context());
    let pieces: Vec<&str> = Kind::ALL.into_iter().filter(|k| k.in_consultation_file()).map(Kind::label).collect();
    c.insert("pieces", &pieces);
    let party = if g.award.is_some() { "titulaire" } else { "candidat" };
    c.insert("contract_pieces", &contract_pieces(party));
    c.insert("vat_percent", &costs::VAT_PERCENT);
    c
}

/// A contract piece of the accord-cadre, as the CCAP's article 3 lists it: its article and noun,
/// the document of the groupement it is (that document names it « le présent … »), and what the
/// CCAP adds after it.
struct ContractPiece {
    article: &'static str,
    noun: &'static str,
    kind: Option<Kind>,
    ccap_detail: &'static str,
}

/// The contract pieces of the accord-cadre by decreasing priority: the one list that the CCAP's
/// article 3 prints and that the AE's section C recalls ([`contract_pieces`]); the mémoire
/// technique, the candidate's or the titulaire's, is last.
const CONTRACT_PIECES: [ContractPiece; 5] = [
    ContractPiece {
        article: "l'",
        noun: "acte d'engagement (AE) et ses annexes",
        kind: Some(Kind::Ae),
        ccap_detail: "",
    },
    ContractPiece {
        article: "le ",
        noun: "cahier des clauses administratives particulières (CCAP)",
        kind: Some(Kind::Ccap),
        ccap_detail: "",
    },
    ContractPiece {
        article: "le ",
        noun: "cahier des clauses techniques particulières (CCTP) et son annexe, ainsi que le schéma directeur des \
               espaces numériques de travail (SDET) dans la version que référence l'article 5 du CCTP",
        kind: Some(Kind::Cctp),
        ccap_detail: "",
    },
    ContractPiece {
        article: "le ",
        noun: "bordereau des prix unitaires et le détail quantitatif estimatif (BPU/DQE)",
        kind: Some(Kind::Quantites),
        ccap_detail:
            " ; le détail quantitatif estimatif sert au jugement des offres ; ses quantités n'engagent pas les \
                      membres, l'accord-cadre étant conclu sans minimum",
    },
    ContractPiece {
        article: "le ",
        noun: "cahier des clauses administratives générales applicables aux marchés publics de techniques de \
               l'information et de la communication (CCAG-TIC), approuvé par l'arrêté du 30 mars 2021",
        kind: None,
        ccap_detail: "",
    },
];

/// The contract pieces ([`CONTRACT_PIECES`], then the mémoire technique) as the CCAP lists them
/// (`ccap`: its own « le présent », each with what it adds, the titulaire's mémoire) and as the
/// AE recalls them (`ae`: « le présent acte d'engagement », the mémoire of `party`, candidat or
/// titulaire).
fn contract_pieces(party: &str) -> serde_json::Value {
    let named = |piece: &ContractPiece, document: Kind| match piece.kind == Some(document) {
        true => format!("le présent {}", piece.noun),
        false => format!("{}{}", piece.article, piece.noun),
    };
    let mut ccap: Vec<String> =
        CONTRACT_PIECES.iter().map(|p| format!("{}{}", named(p, Kind::Ccap), p.ccap_detail)).collect();
    ccap.push(
        "le mémoire technique du titulaire : ses engagements s'ajoutent à ceux des pièces qui le précèdent, sans pouvoir \
         y déroger"
            .into(),
    );
    let mut ae: Vec<String> = CONTRACT_PIECES.iter().map(|p| named(p, Kind::Ae)).collect();
    ae.push(format!("le mémoire technique du {party}"));
    json!({ "ccap": ccap, "ae": ae })
}

/// The offers deadline, once recorded (the RC's article 10, the AE, the note's calendar), and the
/// last days of the questions and of the answers the RC's article 11 counts back from it: a day
/// falling on a Saturday, a Sunday or a public holiday moves to the next working day
/// ([`next_working_day`], règlement n° 1182/71, article 3(4)), the questions still closing before
/// the answers.
fn insert_offers_deadline(c: &mut tera::Context, g: &Groupement) {
    let Some(at) = g.offers_deadline() else { return };
    let day = today_in_france(at);
    let before = |days: u32| next_working_day(day.checked_sub_days(chrono::Days::new(days.into())).unwrap_or(day));
    let answers = before(consultation::ANSWERS_DAYS_BEFORE);
    let questions = before(consultation::QUESTIONS_DAYS_BEFORE).min(answers.pred_opt().unwrap_or(answers));
    c.insert(
        "offers_deadline",
        &json!({
            "words": french_moment(&consultation::stored_deadline(at)),
            "questions_until": french_date(&questions.to_string()),
            "answers_until": french_date(&answers.to_string()),
        }),
    );
}

/// The threshold of the formalised procedures a procédure adaptée stays below (the RC's article
/// 3): its category of buyer's ([`super::buyer_of`]), in force at the launch (else on the planned
/// launch, else on the creation of the groupement).
fn insert_threshold(c: &mut tera::Context, g: &Groupement, members: &[Application]) {
    if g.terms.procedure != consultation::Procedure::ProcedureAdaptee {
        return;
    }
    let planned = g.consultation_date.as_deref().unwrap_or(g.created_on());
    let day = g.consultation_launched_on().or_else(|| NaiveDate::parse_from_str(planned, "%Y-%m-%d").ok());
    let Some(day) = day else { return };
    let threshold = consultation::formalised_threshold(day, super::buyer_of(g, members));
    c.insert("threshold", &format!("{} ({})", threshold.words(), threshold.source));
}

/// The accord-cadre's maximum (the CCAP, the RC, the AE) and, once awarded, the award (the CCAP,
/// the AE and the presentation note): the maximum in quantity is the DQE's, over the duration,
/// raised by the groupement's margin ([`maximum_quantities`]); once awarded, valued at the
/// titulaire's unit prices ([`maximum_totals`]; the DQE's own totals beside it, the basis of the
/// comparison of the offers).
fn insert_contract(c: &mut tera::Context, g: &Groupement, total: &MemberQuantities, equipped: costs::Establishments) {
    let (margin, months) = (g.terms.maximum_margin_percent, g.terms.duration_months);
    let dqe_account_years = costs::PriceLine::AccountYear.quantity_hundredths(total, months);
    let (account_years, setups) = maximum_quantities(g, total);
    let in_words = match g.terms.lots.as_slice() {
        // One lot of the coordinator's (a lot's acte d'engagement): its own lines.
        [lot] if !lot.carries_ent() => own_lines_in_words(lot, margin),
        _ => maximum_in_words((account_years, setups), months, equipped),
    };
    c.insert(
        "maximum",
        &json!({
            "set": dqe_account_years > 0 || total.schools > 0 || g.terms.lots.iter().all(|l| !l.carries_ent()),
            "margin_percent": margin,
            "account_years": costs::quantity(account_years),
            "account_years_declared": dqe_account_years > 0,
            "dqe_account_years": costs::quantity(dqe_account_years),
            "setups": costs::quantity(setups),
            "setups_declared": total.schools > 0,
            "dqe_setups": costs::quantity(total.schools * 100),
            "in_words": in_words,
        }),
    );
    c.insert("contractant", if g.award.is_some() { "titulaire" } else { "candidat" });
    let Some(award) = &g.award else { return };
    let (maximum_ht, maximum_ttc) = maximum_totals(g, total, &award.unit_prices);
    let (dqe_ht, dqe_ttc) = dqe_totals(g, total, &award.unit_prices);
    let notified = NaiveDate::parse_from_str(&award.notified_on, "%Y-%m-%d").ok();
    let ends_on = notified.and_then(|d| term_end(d, award.duration_months)).map(|d| d.to_string());
    c.insert(
        "award",
        &json!({
            "vendor": award.vendor.name, "siret": award.vendor_siret,
            "notified_on": french_date(&award.notified_on),
            "ends_on": ends_on.as_deref().map(french_date).unwrap_or_else(|| "à déterminer".into()),
            "amount_ht": costs::euros(award.amount_ht_cents), "amount_ttc": costs::euros(award.amount_ttc_cents),
            "maximum_ht": costs::euros(maximum_ht), "maximum_ttc": costs::euros(maximum_ttc),
            // The titulaire's choice on the advance (section F of its AE): `renonce`, `conserve`, or
            // empty for an award recorded before the platform asked for it (no box ticked).
            "advance": match award.advance_renounced {
                Some(true) => "renonce",
                Some(false) => "conserve",
                None => "",
            },
            "dqe_ht": costs::euros(dqe_ht), "dqe_ttc": costs::euros(dqe_ttc),
            // The AE's engagement amounts, in figures and in letters (section D).
            "in_letters": {
                "dqe_ht": in_letters(dqe_ht, "hors taxes"), "dqe_ttc": in_letters(dqe_ttc, "toutes taxes comprises"),
                "maximum_ht": in_letters(maximum_ht, "hors taxes"),
                "maximum_ttc": in_letters(maximum_ttc, "toutes taxes comprises"),
            },
        }),
    );
}

/// An amount of `cents` as an acte d'engagement commits to it: in figures, then in letters with
/// its `taxes` (« 141 156,00 € (cent quarante et un mille cent cinquante-six euros hors taxes) »,
/// the conventions' speller `letters::euros_in_letters`); in figures alone when it has no words.
fn in_letters(cents: i64, taxes: &str) -> String {
    match ent_conventions::conventions::letters::euros_in_letters(cents) {
        Some(words) => format!("{} ({words} {taxes})", costs::euros(cents)),
        None => costs::euros(cents),
    }
}

/// The lots of a groupement of several as the RC, the CCAP and the note list them: each with its
/// price lines (designation, unit, DQE quantity and maximum, the members' `total` quantities for
/// the lot carrying the ENT), its estimate when every line has one, its award (titulaire,
/// notification, last day, maximum HT and TTC) or its declaration sans suite.
fn lots_content(g: &Groupement, total: &MemberQuantities, equipped: costs::Establishments) -> Vec<serde_json::Value> {
    let (margin, months) = (g.terms.maximum_margin_percent, g.terms.duration_months);
    g.terms
        .lots
        .iter()
        .map(|lot| {
            let lines: Vec<_> = lot
                .price_lines()
                .into_iter()
                .map(|line| {
                    json!({
                        "designation": costs::designation(lot, line, equipped),
                        "unit": costs::unit_of(lot, line, equipped, months),
                        "quantity": costs::quantity(costs::dqe_hundredths(lot, line, total, months)),
                        "maximum": costs::quantity(costs::maximum_of(lot, line, total, months, margin)),
                    })
                })
                .collect();
            let award = g.award.as_ref().and_then(|a| a.of_lot(lot.number)).map(|a| {
                json!({
                    "vendor": a.vendor.name, "siret": a.vendor_siret, "notified_on": french_date(&a.notified_on),
                    "ends_on": a.last_day().map(|d| french_date(&d.to_string())).unwrap_or_else(|| "à déterminer".into()),
                    "amount_ht": costs::euros(a.amount_ht_cents), "amount_ttc": costs::euros(a.amount_ttc_cents),
                    "marche_id": a.marche_id,
                })
            });
            let sans_suite = g.lots_sans_suite.iter().find(|d| d.lot == lot.number).map(|d| {
                json!({ "declared_on": french_date(&d.declared_on), "motif": d.motif_label })
            });
            json!({
                "number": lot.number, "title": lot.title, "description": lot.description,
                "carries_ent": lot.carries_ent(), "lines": lines,
                "estimate": costs::lot_estimate(lot, margin).map(costs::euros),
                "award": award, "sans_suite": sans_suite,
            })
        })
        .collect()
}

/// The end of the convention constitutive (`convention_end`, `YYYY-MM-DD`), for the note to
/// state it as its article 10 does, and whether it outlasts the marché awarded.
fn insert_convention_end(c: &mut tera::Context, g: &Groupement, convention_end: Option<&str>) {
    let Some(end) = convention_end else { return };
    let marche_end = g.award.as_ref().and_then(|award| {
        let notified = NaiveDate::parse_from_str(&award.notified_on, "%Y-%m-%d").ok()?;
        term_end(notified, award.duration_months)
    });
    let outlasts = marche_end.is_some_and(|day| end > day.to_string().as_str());
    c.insert("convention_end", &json!({ "date": french_date(end), "outlasts": outlasts }));
}

/// The maximum in quantity (`account_years` and `setups`, in hundredths) in words, its lines
/// declared only: « 10 824 comptes × an sur 36 mois et 14 mises en service d'écoles ».
fn maximum_in_words((account_years, setups): (i64, i64), months: u32, equipped: costs::Establishments) -> String {
    let mut lines = Vec::new();
    if account_years > 0 {
        lines.push(format!("{} comptes × an sur {months} mois", costs::quantity(account_years)));
    }
    match setups {
        0 => {}
        100 => lines.push(format!("1 mise en service {}", equipped.of_one())),
        _ => lines.push(format!("{} mises en service {}", costs::quantity(setups), equipped.of_many())),
    }
    lines.join(" et ")
}

/// The maximum in quantity of a coordinator's `lot` in words, line by line: « 48 journées
/// (Journée de formation sur site) et 10 sessions (Classe virtuelle) ».
fn own_lines_in_words(lot: &super::Lot, margin: u32) -> String {
    let none = MemberQuantities::default();
    let words = lot.price_lines().into_iter().filter_map(|line| {
        let own = lot.line_of(line)?;
        let maximum = costs::maximum_of(lot, line, &none, 12, margin);
        Some(format!("{} {} ({})", costs::quantity(maximum), own.unit, own.label))
    });
    words.collect::<Vec<_>>().join(" et ")
}

/// The accord-cadre's maximum in quantity, in hundredths, of every lot: account-years over the
/// duration and set-ups, the DQE's raised by the groupement's `maximum_margin_percent`.
pub(super) fn maximum_quantities(g: &Groupement, total: &MemberQuantities) -> (i64, i64) {
    let (margin, months) = (g.terms.maximum_margin_percent, g.terms.duration_months);
    let of = |line: costs::PriceLine| line.maximum_hundredths(total, months, margin);
    (of(costs::PriceLine::AccountYear), of(costs::PriceLine::SchoolSetup))
}

/// The BPU/DQE's grand totals at `prices`, HT and TTC (each lot's TVA rounded, as the sheet's).
pub(super) fn dqe_totals(g: &Groupement, total: &MemberQuantities, prices: &[costs::UnitPrice]) -> (i64, i64) {
    let months = g.terms.duration_months;
    priced_totals(g, |lot, line| costs::dqe_hundredths(lot, line, total, months), prices)
}

/// The accord-cadre's maximum at `prices`, HT and TTC: its quantities ([`maximum_quantities`])
/// priced as the BPU/DQE prices the DQE's — the award's amounts and the DECP's `montant`. The
/// DQE's totals ([`dqe_totals`]) without a margin.
pub(super) fn maximum_totals(g: &Groupement, total: &MemberQuantities, prices: &[costs::UnitPrice]) -> (i64, i64) {
    let (margin, months) = (g.terms.maximum_margin_percent, g.terms.duration_months);
    priced_totals(g, |lot, line| costs::maximum_of(lot, line, total, months, margin), prices)
}

/// The grand totals, HT and TTC, of `quantity` (each line's of each lot, in hundredths) at
/// `prices`: each lot's lines amounted to the cent, its TVA rounded, as the sheet's.
fn priced_totals(
    g: &Groupement,
    quantity: impl Fn(&super::Lot, costs::PriceLine) -> i64,
    prices: &[costs::UnitPrice],
) -> (i64, i64) {
    g.terms.lots.iter().fold((0, 0), |(ht, ttc), lot| {
        let lot_ht: i64 = lot
            .price_lines()
            .into_iter()
            .map(|line| costs::amount(quantity(lot, line), costs::price_of(prices, lot.number, line).unwrap_or(0)))
            .sum();
        (ht + lot_ht, ttc + lot_ht + costs::vat(lot_ht))
    })
}

/// The expenses section: the common expenses and their split, each member's share per year and,
/// once awarded, its own orders at the awarded unit prices.
fn insert_expenses(c: &mut tera::Context, g: &Groupement, members: &[Application]) {
    let prices = g.award.as_ref().map(|a| a.all_unit_prices()).unwrap_or_default();
    let split = costs::shares(g, members, &prices);
    let euros = costs::euros;
    let per_year = |years: &[i64]| years.iter().map(|y| euros(*y)).collect::<Vec<_>>().join(" / ");
    let awarded = g.award.is_some();
    let rows: Vec<_> = split
        .shares
        .iter()
        .map(|s| {
            let (own, own_per_year) = if awarded {
                (euros(s.own_orders_ht_cents), per_year(&s.own_orders_per_year_ht_cents))
            } else {
                ("après attribution".to_string(), "après attribution".to_string())
            };
            json!({
                "name": s.member.name, "common": euros(s.common_expenses_cents),
                "common_per_year": per_year(&s.common_expenses_per_year_cents),
                "own": own, "own_per_year": own_per_year,
            })
        })
        .collect();
    c.insert("shares", &rows);
    c.insert("awarded", &awarded);
    c.insert("common_expenses", &euros(split.common_expenses_cents));
    c.insert("coordinator_common_expenses", &euros(split.coordinator_common_expenses_cents));
    c.insert("members_common_expenses", &euros(split.members_common_expenses_cents));
    c.insert("coordinator_share_percent", &g.terms.coordinator_share_percent);
    c.insert("members_share_percent", &(100 - g.terms.coordinator_share_percent));
}

/// A text document of a groupement (not the spreadsheet).
pub fn text_document(
    kind: Kind,
    catalog: &Catalog,
    g: &Groupement,
    members: &[Application],
    convention_end: Option<&str>,
) -> Result<Document, Problem> {
    let mut doc = Document::new(kind.label()).with_subtitle(format!("{} – {}", g.title, g.coordinator.name));
    doc = doc.with_reference(format!("Groupement de commandes {}", g.reference));
    let lots_awarded = g.award.as_ref().map(|a| a.lots.as_slice()).unwrap_or_default();
    if kind == Kind::Ae && !lots_awarded.is_empty() {
        // Several lots awarded: one acte d'engagement per lot, each its own accord-cadre.
        for awarded in lots_awarded {
            let view = super::lots::view(g, awarded.lot);
            let mut c = context(catalog, &view, members, convention_end);
            c.insert("lot_of", &json!({ "number": awarded.lot, "title": awarded.title }));
            let heading = format!("Lot n° {} – {}", awarded.lot, awarded.title);
            for mut section in sections_from_markup(&rendered(kind, &c)?) {
                section.heading = format!("{heading} – {}", section.heading);
                doc.sections.push(section);
            }
        }
        return Ok(doc);
    }
    doc.sections = sections_from_markup(&rendered(kind, &context(catalog, g, members, convention_end))?);
    Ok(doc)
}

/// The template of `kind` rendered with `c`.
fn rendered(kind: Kind, c: &tera::Context) -> Result<String, Problem> {
    tera()
        .render(kind.as_str(), c)
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("document template {}: {e:?}", kind.as_str())))
}

/// The BPU/DPGF annex: one row per member with its quantities, then totals;
/// a second sheet lists the priced lines candidates fill in.
pub fn quantities_sheet(g: &Groupement, members: &[Application]) -> Spreadsheet {
    let equipped = costs::Establishments::of(members);
    let header = [
        "Membre",
        "Code",
        "Délibération n°",
        "Date",
        equipped.title(),
        "Classes",
        "Élèves",
        "Comptes enseignants",
        "Comptes parents",
        "Comptes ENT",
    ];
    let mut rows: Vec<Vec<Cell>> = vec![header.iter().map(|h| Cell::header(*h)).collect()];
    for m in members {
        let mut row = vec![
            Cell::text(&m.applicant.name),
            Cell::text(&m.applicant.code),
            Cell::text(&m.deliberation_number),
            Cell::Date(m.deliberation_date.clone()),
        ];
        row.extend(member_quantities(&m.quantities, rows.len() + 1));
        rows.push(row);
    }
    let total = totals(members);
    let mut total_row = vec![Cell::header("Total"), Cell::Empty, Cell::Empty, Cell::Empty];
    total_row.extend(quantity_totals(&total, members.len()));
    rows.push(total_row);
    let bpu = bpu_rows(g, &total, equipped, rows.len());
    Spreadsheet {
        title: format!("{} – {}", Kind::Quantites.label(), g.reference),
        sheets: vec![
            Sheet { name: QUANTITIES_SHEET.into(), column_widths_cm: vec![7.0, 2.5, 4.0, 3.0], rows },
            Sheet { name: "BPU-DQE".into(), column_widths_cm: vec![11.0, 3.0, 3.5, 4.0, 4.0], rows: bpu },
        ],
    }
}

/// The name of the sheet of the members' quantities, which the BPU/DQE's quantities refer to.
const QUANTITIES_SHEET: &str = "Quantités";

/// The columns of the quantities on the « Quantités » sheet: schools, classes, pupils, teacher
/// accounts, parent accounts, ENT accounts.
const QUANTITY_COLUMNS: [char; 6] = ['E', 'F', 'G', 'H', 'I', 'J'];

/// The quantity cells of a member on row `row` of the « Quantités » sheet: its ENT accounts the
/// sum of its pupil, teacher and parent accounts as a formula (`[.G]+[.H]+[.I]`), so that a buyer
/// who edits one sees it follow, [`MemberQuantities::accounts`] its cached value.
fn member_quantities(q: &MemberQuantities, row: usize) -> Vec<Cell> {
    vec![
        Cell::Integer(q.schools),
        Cell::Integer(q.classes),
        Cell::Integer(q.pupils),
        Cell::Integer(q.teacher_accounts),
        Cell::Integer(q.parent_accounts),
        Cell::IntegerFormula { formula: format!("of:=[.G{row}]+[.H{row}]+[.I{row}]"), value: q.accounts() },
    ]
}

/// The total row's quantity cells under `members` member rows (rows 2 to `members` + 1): each
/// column's `SUM` as a formula, `total` ([`totals`]) its cached value; plain counts (0) when no
/// member is listed, there being no range to sum.
fn quantity_totals(total: &MemberQuantities, members: usize) -> Vec<Cell> {
    let values =
        [total.schools, total.classes, total.pupils, total.teacher_accounts, total.parent_accounts, total.accounts()];
    let last = members + 1;
    QUANTITY_COLUMNS
        .iter()
        .zip(values)
        .map(|(column, value)| match members {
            0 => Cell::Integer(value),
            _ => Cell::IntegerFormula { formula: format!("of:=SUM([.{column}2:.{column}{last}])"), value },
        })
        .collect()
}

/// The BPU/DQE: per lot, its price lines (unit, quantity from the members' declared quantities,
/// unit price HT — the awarded one once awarded, blank for the candidates before), the line
/// amount as a formula, then the lot's total HT, TVA and TTC as formulas; last, the grand total.
/// Columns: A designation, B unit, C quantity, D unit price HT, E amount HT. Each quantity is a
/// formula on the « Quantités » sheet's total row `totals_row` ([`quantity_cell`]).
fn bpu_rows(
    g: &Groupement,
    total: &MemberQuantities,
    equipped: costs::Establishments,
    totals_row: usize,
) -> Vec<Vec<Cell>> {
    let months = g.terms.duration_months;
    let prices = g.award.as_ref().map(|a| a.all_unit_prices()).unwrap_or_default();
    let prices = prices.as_slice();
    let mut rows = vec![["Désignation", "Unité", "Quantité", "Prix unitaire HT", "Montant HT"]
        .iter()
        .map(|h| Cell::header(*h))
        .collect::<Vec<_>>()];
    let mut lot_ttc_cells: Vec<(String, i64)> = Vec::new();
    for lot in &g.terms.lots {
        rows.push(vec![Cell::header(format!("Lot {} – {}", lot.number, lot.title))]);
        let first = rows.len() + 1;
        let mut lot_ht = 0;
        for line in lot.price_lines() {
            let (cells, amount) = price_line_row(
                (lot, line),
                (total, equipped, totals_row),
                months,
                costs::price_of(prices, lot.number, line),
                rows.len() + 1,
            );
            lot_ht += amount;
            rows.push(cells);
        }
        let ht_row = rows.len() + 1;
        let last = ht_row - 1;
        let vat = costs::vat(lot_ht);
        let total_row = |label: String, formula: String, cents: i64| {
            vec![Cell::header(label), Cell::Empty, Cell::Empty, Cell::Empty, Cell::EurosFormula { formula, cents }]
        };
        rows.push(total_row(
            format!("Total HT du lot {}", lot.number),
            format!("of:=SUM([.E{first}:.E{last}])"),
            lot_ht,
        ));
        rows.push(total_row(
            format!("TVA {} %", costs::VAT_PERCENT),
            format!("of:=ROUND([.E{ht_row}]*{}/100;2)", costs::VAT_PERCENT),
            vat,
        ));
        rows.push(total_row(
            format!("Total TTC du lot {}", lot.number),
            format!("of:=[.E{ht_row}]+[.E{}]", ht_row + 1),
            lot_ht + vat,
        ));
        lot_ttc_cells.push((format!("[.E{}]", ht_row + 2), lot_ht + vat));
    }
    let refs: Vec<&str> = lot_ttc_cells.iter().map(|(r, _)| r.as_str()).collect();
    rows.push(vec![
        Cell::header("Total TTC de tous les lots"),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::EurosFormula {
            formula: format!("of:={}", refs.join("+")),
            cents: lot_ttc_cells.iter().map(|(_, c)| c).sum(),
        },
    ]);
    rows
}

/// A rendered version, before storage.
struct Rendered {
    title: String,
    html: Option<String>,
    odt: Option<Vec<u8>>,
    ods: Option<Vec<u8>>,
    sha256: String,
}

/// The BPU/DQE row `row` of a price line and its amount HT: its quantity over `months` (the
/// duration in months beside it; account-years of a partial last year to the hundredth, and then
/// the amount rounded to the cent, [`costs::amount`]) × the unit price when given. The quantity
/// is a formula on the « Quantités » sheet's total row `totals_row` ([`quantity_cell`]).
fn price_line_row(
    (lot, line): (&super::Lot, costs::PriceLine),
    (total, equipped, totals_row): (&MemberQuantities, costs::Establishments, usize),
    months: u32,
    price: Option<i64>,
    row: usize,
) -> (Vec<Cell>, i64) {
    let hundredths = costs::dqe_hundredths(lot, line, total, months);
    let amount = costs::amount(hundredths, price.unwrap_or(0));
    let quantity = quantity_cell(line, hundredths, months, totals_row);
    let formula = match hundredths % 100 {
        0 => format!("of:=[.C{row}]*[.D{row}]"),
        _ => format!("of:=ROUND([.C{row}]*[.D{row}];2)"),
    };
    let unit = costs::unit_of(lot, line, equipped, months);
    let cells = vec![
        Cell::text(costs::designation(lot, line, equipped)),
        Cell::text(unit),
        quantity,
        price.map(Cell::Euros).unwrap_or(Cell::Empty),
        Cell::EurosFormula { formula, cents: amount },
    ];
    (cells, amount)
}

/// The BPU/DQE quantity of `line` (`hundredths`, its cached value) as a formula on the « Quantités »
/// sheet's total row `totals_row`, so that a buyer who edits a member's quantities sees the DQE
/// follow: the schools' total for their set-up, the ENT accounts' total × `months` / 12 rounded to
/// the hundredth for the account-years ([`costs::account_years`]: half up, and no half arises).
fn quantity_cell(line: costs::PriceLine, hundredths: i64, months: u32, totals_row: usize) -> Cell {
    let total = |column: char| format!("[$'{QUANTITIES_SHEET}'.{column}{totals_row}]");
    let formula = match line {
        costs::PriceLine::SchoolSetup => format!("of:={}", total(QUANTITY_COLUMNS[0])),
        costs::PriceLine::AccountYear => format!("of:=ROUND({}*{months}/12;2)", total(QUANTITY_COLUMNS[5])),
        // The coordinator's quantity, its own figure.
        costs::PriceLine::Custom(_) => return Cell::Integer(hundredths / 100),
    };
    match hundredths % 100 {
        0 => Cell::IntegerFormula { formula, value: hundredths / 100 },
        _ => Cell::NumberFormula { formula, value: hundredths as f64 / 100.0 },
    }
}

fn render(
    kind: Kind,
    catalog: &Catalog,
    g: &Groupement,
    members: &[Application],
    convention_end: Option<&str>,
) -> Result<Rendered, Problem> {
    if kind == Kind::Quantites {
        let ods = documents::to_ods(&quantities_sheet(g, members));
        return Ok(Rendered {
            title: kind.label().into(),
            html: None,
            sha256: documents::sha256_hex(&ods),
            odt: None,
            ods: Some(ods),
        });
    }
    let doc = text_document(kind, catalog, g, members, convention_end)?;
    let html = documents::to_html(&doc);
    Ok(Rendered {
        title: doc.title.clone(),
        sha256: documents::sha256_hex(html.as_bytes()),
        odt: Some(documents::to_odt(&doc)),
        html: Some(html),
        ods: None,
    })
}

/// A stored version, as listed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StoredDocument {
    pub id: String,
    pub groupement_id: String,
    pub groupement_reference: String,
    pub coordinator: String,
    pub kind: Kind,
    pub title: String,
    pub version: i64,
    /// SHA-256 of the HTML (text documents) or of the ODS file.
    pub sha256: String,
    pub shared: bool,
    /// The formats this server makes it in: `html`, `odt`, and `pdf` where a converter is
    /// installed; `ods` for the quantity annex.
    pub formats: Vec<String>,
    pub created_at: String,
    /// When the consultation this version was generated for was declared sans suite (RFC 3339):
    /// the version is no longer a current piece of the groupement; absent for a current one.
    pub abandoned_at: Option<String>,
    /// « consultation déclarée sans suite le 6 décembre 2026 », beside such a version.
    pub abandoned: Option<String>,
}

/// What a version whose consultation was declared sans suite at `at` is shown with.
fn abandoned_label(at: &str) -> String {
    let day = chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| french_date(&today_in_france(t.with_timezone(&chrono::Utc)).to_string()))
        .unwrap_or_else(|_| at.to_string());
    format!("consultation déclarée sans suite le {day}")
}

const COLUMNS: &str = "d.id, d.groupement_id, d.kind, d.version_no, d.title, d.sha256, d.shared, d.created_at, \
    d.abandoned_at, g.reference AS g_reference, o.name AS c_name";
const FROM: &str = "groupement_documents d JOIN groupements g ON g.id = d.groupement_id \
    JOIN orgs o ON o.id = g.coordinator_org_id";

/// A row of [`COLUMNS`] as stored.
#[derive(FromRow)]
struct DocumentRow {
    id: String,
    groupement_id: String,
    #[sqlx(try_from = "String")]
    kind: Kind,
    version_no: i64,
    title: String,
    sha256: String,
    shared: Flag,
    created_at: String,
    abandoned_at: Option<String>,
    g_reference: String,
    c_name: String,
}

fn from_row(row: DocumentRow) -> StoredDocument {
    StoredDocument {
        id: row.id,
        groupement_id: row.groupement_id,
        groupement_reference: row.g_reference,
        coordinator: row.c_name,
        kind: row.kind,
        title: row.title,
        version: row.version_no,
        sha256: row.sha256,
        shared: row.shared.into(),
        formats: row.kind.served_formats(),
        created_at: row.created_at,
        abandoned: row.abandoned_at.as_deref().map(abandoned_label),
        abandoned_at: row.abandoned_at,
    }
}

pub async fn versions(store: &Store, groupement_id: &str) -> Result<Vec<StoredDocument>, Problem> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE d.groupement_id = $1 ORDER BY d.kind, d.version_no");
    let rows: Vec<DocumentRow> = sqlx::query_as(&sql).bind(groupement_id).fetch_all(store.pool()).await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn get_version(store: &Store, id: &str) -> Result<Option<StoredDocument>, Problem> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE d.id = $1");
    let row: Option<DocumentRow> = sqlx::query_as(&sql).bind(id).fetch_optional(store.pool()).await?;
    Ok(row.map(from_row))
}

/// Generates `kind` from the current state; an unchanged document gives back its
/// latest version (`false`), a changed one a new version (`true`).
pub async fn generate(ctx: &Ctx<'_>, g: &Groupement, kind: Kind) -> Result<(StoredDocument, bool), Problem> {
    super::guard::require_coordinates(ctx.actor, g)?;
    let members = membership::members(ctx.store, &g.id).await?;
    let convention_end: Option<String> = match &g.convention_id {
        Some(id) => {
            sqlx::query_scalar("SELECT end_date FROM conventions WHERE id = $1")
                .bind(id)
                .fetch_optional(ctx.store.pool())
                .await?
        }
        None => None,
    };
    let rendered = render(kind, ctx.catalog, g, &members, convention_end.as_deref())?;
    // A version of a consultation declared sans suite is never given back as current.
    let latest: Option<(String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT id, sha256, version_no, abandoned_at FROM groupement_documents WHERE groupement_id = $1 AND kind = $2 \
         ORDER BY version_no DESC LIMIT 1",
    )
    .bind(&g.id)
    .bind(kind.as_str())
    .fetch_optional(ctx.store.pool())
    .await?;
    if let Some((id, sha256, _, None)) = &latest {
        if *sha256 == rendered.sha256 {
            return Ok((get_version(ctx.store, id).await?.expect("just read"), false));
        }
    }
    let version = latest.map(|(_, _, version_no, _)| version_no).unwrap_or(0) + 1;
    let id = new_id();
    let mut tx = ctx.store.begin_write().await?;
    sqlx::query(
        "INSERT INTO groupement_documents (id, groupement_id, kind, version_no, title, html, odt, ods, sha256, shared, \
         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)",
    )
    .bind(&id)
    .bind(&g.id)
    .bind(kind.as_str())
    .bind(version)
    .bind(&rendered.title)
    .bind(rendered.html)
    .bind(rendered.odt)
    .bind(rendered.ods)
    .bind(&rendered.sha256)
    .bind(&ctx.actor.name)
    .bind(timestamp(ctx.now))
    .execute(&mut *tx)
    .await
    .map_err(on_constraint("une autre génération de ce document vient d'aboutir : recommencez"))?;
    ctx.record(
        &mut tx,
        "groupements.document",
        &g.id,
        Some(&g.coordinator.id),
        json!({ "kind": kind.as_str(), "version": version, "sha256": rendered.sha256 }),
    )
    .await?;
    tx.commit().await?;
    Ok((get_version(ctx.store, &id).await?.expect("just written"), true))
}

/// Marks, in `tx`, every version of `g` not yet marked as belonging to the consultation declared
/// sans suite at `at` (RFC 3339): none of them is a current piece of the consultation relaunched.
pub async fn abandon_versions(tx: &mut Tx, g: &Groupement, at: &str) -> Result<(), Problem> {
    sqlx::query("UPDATE groupement_documents SET abandoned_at = $1 WHERE groupement_id = $2 AND abandoned_at IS NULL")
        .bind(at)
        .bind(&g.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The pieces a relaunched consultation publishes with its new offers deadline: the RC and the
/// AE, generated again at the relaunch (those of the consultation declared sans suite are no
/// longer current: [`abandon_versions`]).
pub const RELAUNCH_PIECES: [Kind; 2] = [Kind::Rc, Kind::Ae];

/// The bytes of a version in `format`, with its media type and file extension; a format of its
/// kind this server does not make (PDF without a converter) is a 406 naming those it makes.
pub async fn content(store: &Store, doc: &StoredDocument, format: &str) -> Result<(Vec<u8>, &'static str), Problem> {
    if !doc.kind.formats().contains(&format) {
        return Err(Problem::invalid_field(
            "format",
            format!("format « {format} » indisponible pour ce document ({})", doc.formats.join(", ")),
        ));
    }
    let column = match format {
        "html" => "html",
        "ods" => "ods",
        _ => "odt",
    };
    let sql = format!("SELECT {column} AS content FROM groupement_documents WHERE id = $1");
    let bytes: Vec<u8> = if column == "html" {
        sqlx::query_scalar::<_, String>(&sql).bind(&doc.id).fetch_one(store.pool()).await?.into_bytes()
    } else {
        sqlx::query_scalar(&sql).bind(&doc.id).fetch_one(store.pool()).await?
    };
    match format {
        "html" => Ok((bytes, "text/html; charset=utf-8")),
        "ods" => Ok((bytes, documents::ODS_MIME)),
        "odt" => Ok((bytes, documents::ODT_MIME)),
        _ => {
            let pdf = tokio::task::spawn_blocking(move || documents::odt_to_pdf(&bytes))
                .await
                .map_err(|e| anyhow::anyhow!("pdf task: {e}"))?
                .map_err(Problem::from)?;
            Ok((pdf, "application/pdf"))
        }
    }
}

/// What looks like personal data in a text: e-mail addresses and French phone numbers.
pub fn personal_data_in(text: &str) -> Option<&'static str> {
    static EMAIL: OnceLock<regex::Regex> = OnceLock::new();
    static PHONE: OnceLock<regex::Regex> = OnceLock::new();
    let email = EMAIL.get_or_init(|| regex::Regex::new(r"[\w.+-]+@[\w-]+\.[\w.-]+").expect("regex"));
    let phone = PHONE.get_or_init(|| regex::Regex::new(r"\b0[1-9](?:[ .]?\d{2}){4}\b").expect("regex"));
    if email.is_match(text) {
        Some("une adresse électronique")
    } else if phone.is_match(text) {
        Some("un numéro de téléphone")
    } else {
        None
    }
}

/// Whether the library leaves out `doc` of `g`: a kind that prints the titulaire's unit prices,
/// once `g` is awarded (versions generated before the award included: the simplest rule, and
/// the library shares models, never a titulaire's negotiated prices).
pub fn kept_from_library(g: &Groupement, doc: &StoredDocument) -> bool {
    g.award.is_some() && doc.kind.prints_award_prices()
}

/// [`kept_from_library`] as a condition on `groupement_documents d JOIN groupements g`: the
/// versions the library serves are the shared ones it does not leave out.
pub fn in_library(cond: &mut Condition) {
    cond.push("d.shared = 1", &[]);
    let kinds: Vec<&str> = Kind::ALL
        .into_iter()
        .filter(|k| k.prints_award_prices())
        .map(Kind::as_str)
        // Versions stored before the presentation note was renamed (see [`Kind::parse`]).
        .chain(std::iter::once("convention"))
        .collect();
    let marks = vec!["?"; kinds.len()].join(", ");
    cond.push(&format!("NOT (g.award IS NOT NULL AND d.kind IN ({marks}))"), &kinds);
}

/// Shares (or stops sharing) a version with the coordinators of every académie; a version
/// holding what looks like personal data, or the titulaire's unit prices, is never shared.
pub async fn set_shared(
    ctx: &Ctx<'_>,
    g: &Groupement,
    doc: &StoredDocument,
    shared: bool,
) -> Result<StoredDocument, Problem> {
    super::guard::require_coordinates(ctx.actor, g)?;
    if shared && kept_from_library(g, doc) {
        return Err(Problem::conflict(
            "ce document imprime les prix unitaires du titulaire du marché attribué : il ne peut pas être \
             partagé (la bibliothèque partage des modèles, jamais les prix négociés d'un titulaire)",
        ));
    }
    if shared {
        let (bytes, _) = content(ctx.store, doc, &doc.formats[0]).await?;
        let text = if doc.kind == Kind::Quantites {
            documents_text_of_ods(&bytes)
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        if let Some(what) = personal_data_in(&text) {
            return Err(Problem::invalid_field(
                "shared",
                format!(
                    "ce document contient {what} : il ne peut pas être partagé (aucune donnée personnelle dans la bibliothèque)"
                ),
            ));
        }
    }
    let mut tx = ctx.store.begin_write().await?;
    sqlx::query("UPDATE groupement_documents SET shared = $1 WHERE id = $2")
        .bind(i64::from(shared))
        .bind(&doc.id)
        .execute(&mut *tx)
        .await?;
    ctx.record(
        &mut tx,
        if shared { "groupements.document.share" } else { "groupements.document.unshare" },
        &g.id,
        Some(&g.coordinator.id),
        json!({ "document": doc.id, "kind": doc.kind.as_str(), "version": doc.version }),
    )
    .await?;
    tx.commit().await?;
    Ok(get_version(ctx.store, &doc.id).await?.expect("exists"))
}

/// The XML of an ODS's content, where its cell texts are (enough to look for personal data).
fn documents_text_of_ods(ods: &[u8]) -> String {
    use std::io::Read;
    let mut xml = String::new();
    if let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(ods)) {
        if let Ok(mut part) = archive.by_name("content.xml") {
            let _ = part.read_to_string(&mut xml);
        }
    }
    xml
}

/// Filters of the shared library.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct LibraryFilter {
    /// `presentation`, `rc`, `ae`, `ccap`, `cctp`, `membres` or `quantites`.
    pub kind: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

/// Shared versions of every groupement the library serves ([`in_library`]), newest first.
pub async fn library(store: &Store, filter: &LibraryFilter) -> Result<Page<StoredDocument>, Problem> {
    let size = page_size(filter.limit)?;
    let mut cond = Condition::default();
    in_library(&mut cond);
    if let Some(k) = filter.kind.as_deref().filter(|k| !k.is_empty()) {
        let kind = Kind::parse(k).ok_or_else(|| {
            Problem::invalid_field("kind", "valeurs : presentation, rc, ae, ccap, cctp, membres, quantites")
        })?;
        cond.push("d.kind = ?", &[kind.as_str()]);
    }
    if let Some(cursor) = filter.cursor.as_deref().filter(|c| !c.is_empty()) {
        cond.push("d.id < ?", &[cursor]);
    }
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE {} ORDER BY d.id DESC LIMIT {}", cond.sql(), size + 1);
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    let items = rows.iter().map(DocumentRow::from_row).collect::<sqlx::Result<Vec<_>>>()?;
    Ok(Page::from_overfetch(items.into_iter().map(from_row).collect(), size, |d| d.id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_justification_ends_as_a_sentence_before_the_text_that_follows_it() {
        assert_eq!(as_sentence("amortissement des investissements "), "amortissement des investissements.");
        assert_eq!(as_sentence("amortissement."), "amortissement.");
        assert_eq!(as_sentence("pourquoi ?"), "pourquoi ?");
    }

    #[test]
    fn the_ae_recalls_the_contract_pieces_the_ccap_lists_sdet_and_ae_included() {
        let pieces = contract_pieces("candidat");
        let ccap: Vec<&str> = pieces["ccap"].as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
        assert_eq!(
            ccap,
            [
                "l'acte d'engagement (AE) et ses annexes",
                "le présent cahier des clauses administratives particulières (CCAP)",
                "le cahier des clauses techniques particulières (CCTP) et son annexe, ainsi que le schéma directeur des \
                 espaces numériques de travail (SDET) dans la version que référence l'article 5 du CCTP",
                "le bordereau des prix unitaires et le détail quantitatif estimatif (BPU/DQE) ; le détail quantitatif \
                 estimatif sert au jugement des offres ; ses quantités n'engagent pas les membres, l'accord-cadre étant \
                 conclu sans minimum",
                "le cahier des clauses administratives générales applicables aux marchés publics de techniques de \
                 l'information et de la communication (CCAG-TIC), approuvé par l'arrêté du 30 mars 2021",
                "le mémoire technique du titulaire : ses engagements s'ajoutent à ceux des pièces qui le précèdent, sans \
                 pouvoir y déroger",
            ],
            "the CCAP's article 3 as it printed it"
        );
        let ae: Vec<&str> = pieces["ae"].as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
        assert_eq!(ae.len(), ccap.len(), "{ae:?}");
        assert_eq!(ae[0], "le présent acte d'engagement (AE) et ses annexes");
        assert_eq!(ae[1], "le cahier des clauses administratives particulières (CCAP)");
        assert!(ae[2].contains("schéma directeur des espaces numériques de travail (SDET)"), "{ae:?}");
        assert!(ccap[3].starts_with(ae[3]) && ccap[4] == ae[4], "{ae:?}");
        assert_eq!(ae[5], "le mémoire technique du candidat");
        assert_eq!(contract_pieces("titulaire")["ae"][5], "le mémoire technique du titulaire");
    }

    #[test]
    fn awarded_amounts_read_in_figures_then_in_letters() {
        assert_eq!(
            in_letters(14_115_600, "hors taxes"),
            "141\u{a0}156,00\u{a0}€ (cent quarante et un mille cent cinquante-six euros hors taxes)"
        );
        assert_eq!(
            in_letters(16_938_720, "toutes taxes comprises"),
            "169\u{a0}387,20\u{a0}€ (cent soixante-neuf mille trois cent quatre-vingt-sept euros et vingt centimes \
             toutes taxes comprises)"
        );
        assert_eq!(in_letters(-5, "hors taxes"), "-0,05\u{a0}€", "no words for a negative amount");
    }

    #[test]
    fn counts_are_printed_in_groups_of_three_as_amounts_are() {
        assert_eq!(count(1800), "1\u{a0}800");
        assert_eq!(count(8410), "8\u{a0}410");
        assert_eq!(count(999), "999");
    }

    #[test]
    fn an_escaped_value_holds_no_field_separator_nor_direction_control() {
        assert_eq!(markup_escape("a :: :: b"), "a : : b");
        assert_eq!(markup_escape("a :: :: :: b"), "a : : : b");
        assert!(!markup_escape("x\u{202e}y | z").contains(['\u{202e}', '|']));
    }

    #[test]
    fn a_member_value_adds_no_section_row_cell_or_bullet_to_the_members_document() {
        let context = tera::Context::from_value(json!({
            "members": [{ "name": "Fresnes | 0 | 0", "kind": "commune", "code": "94034",
                "deliberation_number": "2026-45\n## Section ajoutée\n- puce", "deliberation_date": "30 juin 2026",
                "schools": 1, "pupils": 2, "accounts": 3 }],
            "members_count": 1, "totals": { "schools": 1, "pupils": 2, "accounts": 3 },
            "establishments": costs::Establishments::Ecoles.words()
        }))
        .unwrap();
        let sections = sections_from_markup(&tera().render("membres", &context).unwrap());
        let headings: Vec<&str> = sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(headings, ["Membres du groupement", "Récapitulatif"]);
        let Block::Table { header, rows } = &sections[0].blocks[0] else { panic!("{:?}", sections[0].blocks) };
        assert_eq!((rows.len(), rows[0].len()), (1, header.len()), "{rows:?}");
        assert_eq!(rows[0][3], "2026-45 ## Section ajoutée - puce");
        assert_eq!(sections[0].blocks.len(), 1);
    }

    #[test]
    fn the_markup_makes_sections_paragraphs_bullets_tables_and_fields() {
        let text = "## Un\nPremière ligne\nsuite.\n\n- a\n- b\n| H1 | H2 |\n| x | y |\nÉcoles :: 3\nÉlèves :: 70\n## Deux\nFin.";
        let sections = sections_from_markup(text);
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].heading, "Un");
        assert_eq!(
            sections[0].blocks,
            vec![
                Block::Paragraph("Première ligne suite.".into()),
                Block::Bullets(vec!["a".into(), "b".into()]),
                Block::Table { header: vec!["H1".into(), "H2".into()], rows: vec![vec!["x".into(), "y".into()]] },
                Block::Fields(vec![("Écoles".into(), "3".into()), ("Élèves".into(), "70".into())]),
            ]
        );
        assert_eq!(sections[1].blocks, vec![Block::Paragraph("Fin.".into())]);
    }

    #[test]
    fn the_dqe_prices_a_partial_last_year_for_its_months_beside_its_duration() {
        let total = MemberQuantities { schools: 3, classes: 0, pupils: 5, teacher_accounts: 1, parent_accounts: 1 };
        let line = costs::PriceLine::AccountYear;
        let ent = super::super::default_lots().remove(0);
        // 7 accounts for 30 months: 17,5 account-years at 4,50 €, 78,75 €; not 21 (three whole years).
        let (cells, amount) =
            price_line_row((&ent, line), (&total, costs::Establishments::Ecoles, 5), 30, Some(450), 3);
        assert_eq!(cells[1], Cell::text("compte × an sur 30 mois"));
        // The quantity follows the « Quantités » sheet's total of ENT accounts (row 5).
        assert_eq!(
            cells[2],
            Cell::NumberFormula { formula: "of:=ROUND([$'Quantités'.J5]*30/12;2)".into(), value: 17.5 }
        );
        assert_eq!(cells[4], Cell::EurosFormula { formula: "of:=ROUND([.C3]*[.D3];2)".into(), cents: 7875 });
        assert_eq!(amount, 7875);
        // Whole years are unchanged: an integer quantity, the plain product.
        let (cells, amount) =
            price_line_row((&ent, line), (&total, costs::Establishments::Ecoles, 5), 36, Some(450), 3);
        assert_eq!(
            cells[2],
            Cell::IntegerFormula { formula: "of:=ROUND([$'Quantités'.J5]*36/12;2)".into(), value: 21 }
        );
        assert_eq!(cells[4], Cell::EurosFormula { formula: "of:=[.C3]*[.D3]".into(), cents: 9450 });
        assert_eq!(amount, 9450);
        // Schools are set up once, whatever the duration; before the award, no price and 0.
        let (cells, amount) = price_line_row(
            (&ent, costs::PriceLine::SchoolSetup),
            (&total, costs::Establishments::Colleges, 5),
            30,
            None,
            4,
        );
        let schools = Cell::IntegerFormula { formula: "of:=[$'Quantités'.E5]".into(), value: 3 };
        assert_eq!(
            (cells[1].clone(), cells[2].clone(), cells[3].clone(), amount),
            (Cell::text("collège"), schools, Cell::Empty, 0)
        );
    }

    #[test]
    fn personal_data_is_spotted() {
        assert_eq!(personal_data_in("écrire à marie.dupont@mairie-fresnes.fr"), Some("une adresse électronique"));
        assert_eq!(personal_data_in("tél. 01 45 67 89 10"), Some("un numéro de téléphone"));
        assert_eq!(personal_data_in("Fresnes, délibération 2026-45 du 30 juin 2026, 11 écoles"), None);
    }

    /// The CCTP sends its penalties and its Art. 28 clauses to the CCAP's articles that hold them,
    /// and the CCAP's last article lists its derogations to the CCAG-TIC.
    #[test]
    fn the_cctp_refers_to_the_ccap_articles_that_hold_its_administrative_clauses() {
        let template = |name: &str| TEMPLATES.iter().find(|(n, _)| *n == name).expect("template").1;
        let (ccap, cctp) = (template("ccap"), template("cctp"));
        assert!(ccap.contains("## Article 9 – Protection des données à caractère personnel et responsabilité"));
        assert!(ccap.contains("## Article 10 – Pénalités"));
        assert!(cctp.contains("par l'article 9 du cahier des clauses administratives particulières (CCAP)"));
        assert!(cctp.contains("par l'article 10 du cahier des clauses administratives particulières (CCAP)"));
        assert!(!cctp.contains("penalty_"), "no penalty amount left in the CCTP");
        assert_eq!(ccap.rfind("## Article"), ccap.find("## Article 11 – Dérogations au CCAG-TIC"));
        // The articles follow each other from 1, and the CCAP refers only to its own.
        let numbers: Vec<u32> =
            ccap.lines().filter_map(|l| l.strip_prefix("## Article ")?.split(' ').next()?.parse().ok()).collect();
        assert_eq!(numbers, (1..=11).collect::<Vec<_>>());
        assert!(ccap.contains("l'article 10 du présent CCAP") && ccap.contains("pénalités de l'article 10 ne limite"));
        // The AE's avance box refers to the CCAP's article on the avance.
        assert!(ccap.contains("## Article 7 – Avance"));
        assert!(template("ae").contains("au bénéfice de l'avance, dans les conditions de l'article 7 du CCAP"));
    }

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(tera().get_template_names().any(|n| n == *name), "{name}");
        }
    }
}
