//! A convention as a document: parties, covered schools, clauses, indicators,
//! cost sharing, RGPD roles, and a signature page. The SHA-256 that signatures
//! bind is the hash of the HTML of everything but the signature page.

pub use super::avenant::CURRENT_EDITION;
use super::avenant::{self, Amended};
use super::frozen::Frozen;
use super::model::{ConventionModel, ParameterSpec, ParameterType, RenewalPeriod};
use super::workflow::Span;
use super::{cost_shares, Convention, CostShareView, Status};
use super::{processing, signatories};
use ent_documents::documents::{self, Block, Document, Section, Typography};
use ent_kernel::clock::{french_date, today_in_france};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::naming;
use ent_kernel::store::Store;
use ent_platform::registry::OrgRef;
use serde_json::{json, Map, Value};

/// The first edition of the text (`conventions.document_edition`) set in French typography
/// (`documents::typography`: no-break spaces before « ; : ! ? », in amounts…). The documents of
/// an earlier edition render with their spaces as written: what was signed keeps its bytes, and
/// its hash re-derives. Edition 3 shipped without it: it is 4, never 3.
pub const TYPOGRAPHY_FROM_EDITION: i64 = 4;

const _: () = assert!(CURRENT_EDITION >= TYPOGRAPHY_FROM_EDITION, "a convention drafted now is set in French");
const _: () = assert!(TYPOGRAPHY_FROM_EDITION > 3, "edition 3 shipped as written: its signed texts keep their bytes");

/// The first edition whose names of the directory read as French typography writes them
/// ([`naming::display_name`]: « École élémentaire … », not « Ecole élémentaire … », one space
/// between words): the parties, the covered schools, the RGPD controller and sub-processors, the
/// title and, in an avenant, the conventions it cites. The directory keeps its names as
/// imported; an earlier edition renders them as stored, as it was signed.
pub const DISPLAY_NAMES_EDITION: i64 = 5;

/// The first edition in which a breach is notified to the controller « dans les meilleurs délais
/// et au plus tard 48 heures après en avoir pris connaissance », in the models' clause (the
/// clauses' `edition`) and in the annex of article 28 alike (`processing::annex`); before, the
/// clause said « sans délai » and the annex « dans les meilleurs délais », without a cap.
pub const BREACH_DEADLINE_EDITION: i64 = 5;

/// The first edition whose annex of article 28 lists an école's categories of persons as the
/// premier degré has them (`processing::annex`): the personnels once, no documentaliste.
pub const SCHOOL_SUBJECTS_EDITION: i64 = 5;

/// The first edition in which an établissement signs « Fait à » its commune by default
/// (`signatories::signature_blocks`), as a commune does; before, « Fait à …………………… ».
pub const SCHOOL_PLACE_EDITION: i64 = 5;

/// The first edition worded as a legal act is (domain review 37, F13): small numbers of the
/// operative text in letters (« Fait en trois exemplaires originaux », « au moins une fois par
/// an », « un préavis de trois mois »: the clauses' `in_words`, `in_words_feminine`); an académie
/// party in lower case (« l'académie de Créteil », [`worded`]); a representative whose name gives
/// no civility « agissant en vertu de » the act rather than « dûment habilité(e) »
/// (`signatories::empowerment_text`); a party designated with its article (« ci-après dénommée
/// « le membre du groupement » »); a sensitive datum of the art. 28 annex in one parenthesis
/// citing article 9 only (`processing::annex`). Edition 5 shipped without any of these.
pub const WORDING_EDITION: i64 = 6;

const _: () = assert!(WORDING_EDITION > 5 && WORDING_EDITION <= CURRENT_EDITION, "edition 5 keeps its bytes");

/// The first edition whose operative text writes every duration and time limit in letters (domain
/// review 38, G9): the convention's duration and its renewals (« pour une durée de trente-six
/// mois », [`duration_in`]), the notice before the term (« reçue au moins trois mois avant son
/// échéance »), any integer parameter the clauses read `in_words` ([`number_in_words`], not
/// capped at twenty as edition 6's [`in_words`]); and a count with the French thousands
/// separator (« 4 600 comptes », `documents::grouped`), in the « Caractéristiques », the clauses
/// and an avenant's changes (« 4 600 (non fixé auparavant) »). Edition 7 also words the
/// académie's money share of a bipartite (its base, ceiling and payment: the model's
/// `financial_item` and art. 4) and the convention constitutive's « Vu », one member and
/// art. 11 (its model's `{% if edition >= 7 %}`). Edition 6 shipped without any of these.
pub const FIGURES_EDITION: i64 = 7;

const _: () =
    assert!(FIGURES_EDITION > WORDING_EDITION && FIGURES_EDITION <= CURRENT_EDITION, "edition 6 keeps its bytes");

/// The first edition whose money is stated as a financial commitment is (domain review 39, G2,
/// G3): an amount the clauses read from `amounts` in letters and figures (« douze mille trois
/// cent quarante-cinq euros et soixante-sept centimes (12 345,67 €) », [`amount_in_letters`]),
/// which the bipartite's art. 4 states « toutes taxes comprises », prorated for a school year the
/// convention does not cover in full (one twelfth a month in force on its 15th) and changed by
/// avenant for the payments from its date of effect (the model's `{% if edition >= 8 %}`; an
/// avenant restates it, `avenant::Changes::stipulations`); and a notice period of the
/// « Caractéristiques » (a count under a label « (mois) ») read « 3 mois » ([`parameter_label`],
/// [`parameter_text_in`]). Edition 7 shipped without any of these.
pub const CEILING_EDITION: i64 = 8;

const _: () =
    assert!(CEILING_EDITION > FIGURES_EDITION && CEILING_EDITION <= CURRENT_EDITION, "edition 7 keeps its bytes");

/// The first edition whose « Caractéristiques » state the académie's annual ceiling as art. 4
/// does (domain review 40): in letters and figures, « toutes taxes comprises » ([`ttc`]); and,
/// for a first or last school year the convention does not cover in full, the ceiling of that
/// year by art. 4's rule, one twelfth of the annual ceiling a month the convention is in force on
/// its 15th ([`prorated_ceilings`]). Edition 8 shipped without these.
pub const PRORATED_CEILING_EDITION: i64 = 9;

const _: () = assert!(
    PRORATED_CEILING_EDITION > CEILING_EDITION && PRORATED_CEILING_EDITION <= CURRENT_EDITION,
    "edition 8 keeps its bytes"
);

/// The first edition naming an académie in lower case inside a sentence (« l'académie de
/// Créteil », « de l'académie de Créteil »: [`naming::of_org`]) wherever its text names it, as
/// French administrative typography writes the territorial circonscription ([`designation`]).
/// An earlier edition names it as it was signed ([`naming::of_org_capitalised`]), editions 6 to 8
/// lowering it in their body afterwards ([`worded`]): their bytes are kept.
pub const ACADEMIE_LOWERCASE_EDITION: i64 = 9;

const _: () = assert!(
    ACADEMIE_LOWERCASE_EDITION > CEILING_EDITION && ACADEMIE_LOWERCASE_EDITION <= CURRENT_EDITION,
    "edition 8 keeps its bytes"
);

/// The first edition whose tripartite states the académie's money share in its article 5 as the
/// bipartite's article 4 does (domain review 41, F4): its base, its annual ceiling in letters and
/// figures « toutes taxes comprises », its proration by twelfths (a month in force on its 15th, to
/// the cent below), a change by avenant and the payment, where edition 9 stated the ceiling among
/// the « Caractéristiques » alone and article 5 an uncapped share; and whose cost annex calls that
/// share a financial participation within the ceiling. The tripartites' files keep their bytes:
/// the code writes both (`code_text`), as it adds their ceiling (`model::ACADEMIE_CEILING_MODELS`).
pub const TRIPARTITE_CEILING_EDITION: i64 = 10;

const _: () = assert!(
    TRIPARTITE_CEILING_EDITION > PRORATED_CEILING_EDITION && TRIPARTITE_CEILING_EDITION <= CURRENT_EDITION,
    "edition 9 keeps its bytes"
);

/// The first edition whose art. 28 annex lists each category of persons and each type of data
/// once in the second degré too (domain review 41, F9): the personnels once, « personnels
/// enseignants » within « personnels enseignants et documentalistes » (`processing::secondary_subjects`,
/// the premier degré's rule of [`SCHOOL_SUBJECTS_EDITION`] for a degree with documentalistes), a
/// type of data another covers left out (`processing::data_once`); and that names the ENT it
/// covers by the party covered (« de l'ENT de l'établissement », « des écoles couvertes ») rather
/// than « des écoles et établissements couverts » for one collège. Edition 9 shipped without these.
pub const ANNEX_ONCE_EDITION: i64 = 10;

const _: () = assert!(
    ANNEX_ONCE_EDITION > PRORATED_CEILING_EDITION && ANNEX_ONCE_EDITION <= CURRENT_EDITION,
    "edition 9 keeps its bytes"
);

/// The first edition whose bipartite states in its article 4 that the ceiling of a school year the
/// convention does not cover in full is rounded to the cent below (« arrondi au centime
/// inférieur »), as the « Caractéristiques » compute it ([`prorated_ceilings`]) and the tripartite's
/// article 5 says from [`TRIPARTITE_CEILING_EDITION`]; and whose article 4 opens the share of the
/// services académiques « dans la limite du plafond annuel fixé ci-après », as that article 5
/// does. The bipartite's file keeps its bytes: the code writes its article 4 with the tripartites'
/// wording (`code_text`). Edition 10 shipped the file's article 4 (edition 8's wording).
pub const BIPARTITE_ROUNDING_EDITION: i64 = 11;

/// The first edition whose art. 28 annex names the bouquets of its « Nature et finalités » item as a
/// French list, each bouquet and option once (« Socle premier degré, Option visioconférence et
/// Option exercices (Moodle) », `processing::bouquets_text`): edition 10 joined each tenant's
/// bouquet and options (« Socle premier degré + Option visioconférence, Option exercices (Moodle) »)
/// with « ; », naming the base bouquet again for the schools no tenant serves, in a convention's
/// annex and in the annex an avenant restates alike.
pub const BOUQUET_LIST_EDITION: i64 = 11;

/// The first edition whose avenant states a changed académie's ceiling, in its « Objet » and its
/// « Stipulations modifiées », as the convention's « Caractéristiques » state it from
/// [`PRORATED_CEILING_EDITION`] — in letters and figures, « toutes taxes comprises » ([`amended_value`])
/// — where edition 10 wrote « 5 000,00 € », an amount whose taxes the text did not say.
pub const AVENANT_CEILING_EDITION: i64 = 11;

/// The first edition whose « Vu » cites a party's act of délégation as its « Entre » does, the act
/// in parentheses after the party (« Vu l'acte de délégation de signature de l'académie de Créteil
/// (arrêté n° 2025-07 du 30 juin 2025) », `signatories::vu_lines`), where edition 10 ran the act
/// into the sentence and named the party after it, capitalised (« … signature arrêté n° 2025-07 du
/// 30 juin 2025 (Académie de Créteil) »).
pub const DELEGATION_VU_EDITION: i64 = 11;

/// The first edition whose bipartite counts its écoles in letters in its article 1 (« au nombre de
/// onze », the clauses' `schools_in_words`, the model's `{% if edition >= 11 %}`), as
/// [`WORDING_EDITION`] writes the small numbers of the operative text; edition 10 wrote « 11 ».
pub const SCHOOLS_IN_WORDS_EDITION: i64 = 11;

const _: () = after_shipped(
    &[
        BIPARTITE_ROUNDING_EDITION,
        BOUQUET_LIST_EDITION,
        AVENANT_CEILING_EDITION,
        DELEGATION_VU_EDITION,
        SCHOOLS_IN_WORDS_EDITION,
    ],
    10,
);

/// The first edition whose art. 28 annex names the sub-processors in one clause (« Sous-traitants
/// ultérieurs : l'éditeur de la solution, Éditeur ENT SAS, et l'hébergeur, Hébergeur SA. »,
/// `processing::subprocessors`), where edition 11 ran two colons into the item (« Sous-traitants
/// ultérieurs : éditeur de la solution : … ; hébergeur : … »).
pub const SUBPROCESSORS_CLAUSE_EDITION: i64 = 12;

/// The first edition whose « Caractéristiques » and avenants label a parameter as the text reads
/// it ([`label_in`]): the académie party by the name the model designates it with (« Part des
/// services académiques dans le coût du service », « Plafond annuel de la participation des
/// services académiques » where that party is « les services académiques »), and the committee's
/// meetings as the minimum the article stipulates (« Nombre minimal de réunions du comité de
/// pilotage par an »); and whose RGPD notes name that party so too ([`rgpd_notes`]). Edition 11
/// labelled them « … de l'académie » and « Réunions du comité de pilotage par an ».
pub const LABELS_EDITION: i64 = 12;

/// The first edition whose second degré designates the EPLE as the code de l'éducation does: in
/// the « Entre », « établissement public local d'enseignement, représenté par son chef
/// d'établissement, organe exécutif de l'établissement (articles L. 421-3 et R. 421-9 du code de
/// l'éducation) » (`signatories::between_description`); in the RGPD roles' annex, the controller
/// « en la personne de son chef d'établissement », as article 8 and the notes say; its « Vu »,
/// préambule and article 1 cite the article of the collectivité de rattachement that is party
/// (L. 213-2 for a département, L. 214-6 for a région: the clauses' `rattachement`) where edition
/// 11 cited both whatever the party.
pub const EPLE_EDITION: i64 = 12;

/// The first edition whose financial article states the cost it shares « toutes taxes
/// comprises », leaves the excess over the académie's ceiling to the collectivité, and, in the
/// second degré, states the établissement's money share on the same base with its titre de
/// recettes (`code_text`), its line of the cost annex reading that share (or, at 0 %, its
/// contributions in kind) rather than « participation éventuelle aux services optionnels ».
pub const TTC_SHARES_EDITION: i64 = 12;

/// The first edition whose art. 28 annex states the controller's obligations towards its
/// processor (art. 28(3), first subparagraph: « les obligations et les droits du responsable du
/// traitement »; the CNIL's model clauses), which edition 11 left out (`processing::annex`).
pub const CONTROLLER_DUTIES_EDITION: i64 = 12;

const _: () = after_shipped(
    &[SUBPROCESSORS_CLAUSE_EDITION, LABELS_EDITION, EPLE_EDITION, TTC_SHARES_EDITION, CONTROLLER_DUTIES_EDITION],
    11,
);

/// How a text of `edition` designates an organisation ([`ACADEMIE_LOWERCASE_EDITION`]).
pub fn designation(kind: OrgKind, name: &str, edition: i64) -> naming::Designation {
    match edition >= ACADEMIE_LOWERCASE_EDITION {
        true => naming::of_org(kind, name),
        false => naming::of_org_capitalised(kind, name),
    }
}

/// An amount as a commitment of [`PRORATED_CEILING_EDITION`] states it: [`amount_in_letters`],
/// « toutes taxes comprises ».
fn ttc(cents: i64) -> String {
    format!("{} toutes taxes comprises", amount_in_letters(cents))
}

/// The school year (by the year of its 1 September) a day falls in.
fn school_year_of(day: chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    if day.month() >= 9 {
        day.year()
    } else {
        day.year() - 1
    }
}

/// How many months of the school year starting 1 September `year` a convention from `start` to
/// `end` is in force on the 15th of: what art. 4 counts twelfths of the annual ceiling by.
fn months_in_force(year: i32, start: chrono::NaiveDate, end: chrono::NaiveDate) -> u32 {
    (0..12)
        .filter_map(|i| {
            let (y, m) = if i < 4 { (year, 9 + i) } else { (year + 1, i - 3) };
            chrono::NaiveDate::from_ymd_opt(y, m, 15)
        })
        .filter(|fifteenth| (start..=end).contains(fifteenth))
        .count() as u32
}

/// The ceiling of each first or last school year `conv` does not cover in full, as its
/// « Caractéristiques » state it from [`PRORATED_CEILING_EDITION`]: (« Plafond pour l'année
/// scolaire 2026-2027 (huit mois couverts sur douze) », [`ttc`] of as many twelfths of the annual
/// `ceiling` as months in force on their 15th, [`months_in_force`], to the cent below).
fn prorated_ceilings(conv: &Convention, ceiling: i64) -> Vec<(String, String)> {
    let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let Some((start, end)) = parse(&conv.start_date).zip(parse(&conv.end_date)) else { return Vec::new() };
    let mut years = vec![school_year_of(start), school_year_of(end)];
    years.dedup();
    years
        .into_iter()
        .filter_map(|year| {
            let months = months_in_force(year, start, end);
            (months < 12).then_some((year, months))
        })
        .map(|(year, months)| {
            let cents = i64::try_from(i128::from(ceiling) * i128::from(months) / 12).unwrap_or(ceiling);
            let count = super::letters::in_letters(u64::from(months), false).unwrap_or_else(|| months.to_string());
            let covered = if months == 1 { "couvert" } else { "couverts" };
            let label = format!(
                "Plafond de la participation pour l'année scolaire {year}-{} ({count} mois {covered} sur douze)",
                year + 1
            );
            (label, ttc(cents))
        })
        .collect()
}

/// An amount of `cents` as a text of [`CEILING_EDITION`] commits to it: in letters, then in
/// figures (« vingt mille euros (20 000,00 €) », `letters::euros_in_letters`); in figures alone
/// when it has no words (negative, or past the billions).
pub fn amount_in_letters(cents: i64) -> String {
    match super::letters::euros_in_letters(cents) {
        Some(words) => format!("{words} ({})", documents::euros(cents)),
        None => documents::euros(cents),
    }
}

/// `n` in French words as [`WORDING_EDITION`] writes it (« un », « trois », « une » when
/// `feminine`): up to twenty, figures beyond (edition 6 shipped so).
pub fn in_words(n: i64, feminine: bool) -> String {
    match n {
        0..=20 => number_in_words(n, feminine),
        _ => n.to_string(),
    }
}

/// `n` in French words from [`FIGURES_EDITION`] (« trente-six », « vingt et un », « quatre-vingts »,
/// « cent douze », « une » when `feminine`, `letters::in_letters`), up to 999; figures beyond (a
/// count is then grouped), as edition 7 shipped.
pub fn number_in_words(n: i64, feminine: bool) -> String {
    match u64::try_from(n).ok().filter(|n| *n < 1000) {
        Some(small) => super::letters::in_letters(small, feminine).unwrap_or_else(|| n.to_string()),
        None => n.to_string(),
    }
}

/// How long a convention from `start` to `end` lasts, as a text of `edition` writes it: in
/// letters from [`FIGURES_EDITION`] (« trente-six mois », « un mois et quinze jours »), in figures
/// before ([`duration_text`]).
pub fn duration_in(edition: i64, start: &str, end: &str) -> String {
    if edition < FIGURES_EDITION {
        return duration_text(start, end);
    }
    let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let span = parse(start).zip(parse(end)).and_then(|(start, end)| Span::between(start, end));
    let Some(Span { months, days }) = span else { return format!("du {start} au {end}") };
    let days_text = match days {
        1 => "un jour".to_string(),
        d => format!("{} jours", number_in_words(i64::try_from(d).unwrap_or(i64::MAX), false)),
    };
    match (months, days) {
        (0, _) => days_text,
        (m, 0) => months_in_words(m),
        (m, _) => format!("{} et {days_text}", months_in_words(m)),
    }
}

/// « trente-six mois ».
fn months_in_words(months: u32) -> String {
    format!("{} mois", number_in_words(i64::from(months), false))
}

/// The text of a block as [`WORDING_EDITION`] writes it: an académie named with its article in
/// lower case (« l'académie de Créteil », « de l'académie »), as the clauses already write
/// « rectrice de l'académie de Créteil »; a table cell opening with its name keeps its capital.
fn worded(text: &str) -> String {
    text.replace("l'Académie ", "l'académie ").replace("l\u{2019}Académie ", "l\u{2019}académie ")
}

/// `doc` with every text of its sections [`worded`].
fn worded_document(mut doc: Document) -> Document {
    for section in &mut doc.sections {
        section.heading = worded(&section.heading);
        for block in &mut section.blocks {
            match block {
                Block::Paragraph(text) => *text = worded(text),
                Block::Bullets(items) => items.iter_mut().for_each(|t| *t = worded(t)),
                Block::Table { rows, .. } => rows.iter_mut().flatten().for_each(|t| *t = worded(t)),
                Block::Fields(fields) => fields.iter_mut().for_each(|(_, v)| *v = worded(v)),
            }
        }
    }
    doc
}

/// Fails the build unless each edition of `review` comes after `shipped` (which shipped without
/// them: its signed texts keep their bytes) and a convention drafted now has it.
const fn after_shipped(review: &[i64], shipped: i64) {
    let mut i = 0;
    while i < review.len() {
        assert!(review[i] > shipped, "an edition that shipped without it keeps its bytes");
        assert!(review[i] <= CURRENT_EDITION, "a convention drafted now has it");
        i += 1;
    }
}

const _: () =
    after_shipped(&[DISPLAY_NAMES_EDITION, BREACH_DEADLINE_EDITION, SCHOOL_SUBJECTS_EDITION, SCHOOL_PLACE_EDITION], 4);

/// `conv` with its names as a text of `edition` shows them: from [`DISPLAY_NAMES_EDITION`], its
/// title and every name of the directory it holds through [`naming::display_name`]; before, as
/// stored (borrowed).
pub(super) fn shown_in(conv: &Convention, edition: i64) -> std::borrow::Cow<'_, Convention> {
    if edition < DISPLAY_NAMES_EDITION {
        return std::borrow::Cow::Borrowed(conv);
    }
    let shown = |org: &mut OrgRef| org.name = naming::display_name(&org.name);
    let mut conv = conv.clone();
    conv.title = naming::display_name(&conv.title);
    conv.parties.iter_mut().for_each(|p| shown(&mut p.org));
    conv.schools.iter_mut().for_each(shown);
    conv.subprocessors.iter_mut().for_each(shown);
    conv.rgpd_controller.iter_mut().for_each(shown);
    std::borrow::Cow::Owned(conv)
}

/// How the text of `conv`'s documents is set, by its edition ([`typography_of`]).
pub fn typography(conv: &Convention) -> Typography {
    typography_of(conv.document_edition)
}

/// How a text of `edition` is set: in French from [`TYPOGRAPHY_FROM_EDITION`], as written before.
fn typography_of(edition: i64) -> Typography {
    if edition >= TYPOGRAPHY_FROM_EDITION {
        Typography::French
    } else {
        Typography::AsWritten
    }
}

/// The clauses' variables: `parties.<key>`, `parties.<key>_list`, `params`, dates, `duration`,
/// `renewal_duration`, `schools_count`, `model`.
pub(super) fn clause_context(model: &ConventionModel, conv: &Convention) -> tera::Context {
    let mut parties = Map::new();
    for spec in &model.parties {
        let orgs: Vec<Value> = conv
            .parties
            .iter()
            .filter(|p| p.key == spec.key)
            .map(|p| {
                let d = designation(p.org.kind, &p.org.name, conv.document_edition);
                json!({
                    "name": p.org.name, "code": p.org.code, "label": spec.label,
                    "official": d.official, "article": d.article, "of": d.of,
                })
            })
            .collect();
        if let Some(first) = orgs.first() {
            parties.insert(spec.key.clone(), first.clone());
        }
        parties.insert(format!("{}_list", spec.key), Value::Array(orgs));
    }
    let mut context = tera::Context::new();
    context.insert("parties", &parties);
    context.insert("params", &clause_params(model, conv));
    // Each text parameter as it reads inside a sentence (« portant sur fourniture, … »).
    let in_sentence: Map<String, Value> = conv
        .parameters
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|text| (k.clone(), Value::from(naming::in_sentence(text)))))
        .collect();
    context.insert("in_sentence", &in_sentence);
    context.insert("start_date", &french_date(&conv.start_date));
    context.insert("end_date", &french_date(&conv.end_date));
    let edition = conv.document_edition;
    context.insert("duration", &duration_in(edition, &conv.start_date, &conv.end_date));
    let renewal_duration = match model.renewed_for {
        RenewalPeriod::ModelDuration if edition >= FIGURES_EDITION => months_in_words(model.duration_months),
        RenewalPeriod::ModelDuration => format!("{} mois", model.duration_months),
        RenewalPeriod::SameDuration => duration_in(edition, &conv.start_date, &conv.end_date),
    };
    context.insert("renewal_duration", &renewal_duration);
    context.insert("schools_count", &conv.schools.len());
    // The count in letters (« onze » écoles), for a text of SCHOOLS_IN_WORDS_EDITION.
    let schools = i64::try_from(conv.schools.len()).unwrap_or(i64::MAX);
    context.insert("schools_in_words", &number_in_words(schools, true));
    context.insert("sdet_version", &model.sdet_version);
    // The article of the code de l'éducation that gives the collectivité party its charge of the
    // établissement (`{{ rattachement.article }}`, « relatif aux charges {{ rattachement.of }} »):
    // what the second degré cites from EPLE_EDITION.
    let collectivite = conv.parties.iter().find(|p| p.key == "collectivite").map(|p| p.org.kind);
    if let Some((article, of)) = collectivite.and_then(rattachement) {
        context.insert("rattachement", &json!({ "article": article, "of": of }));
    }
    context.insert("model", &json!({ "id": model.id, "version": model.version, "title": model.title }));
    // The edition of the text, for a clause whose wording changed with it (« {% if edition >= 5 %} »).
    context.insert("edition", &conv.document_edition);
    // An integer parameter in letters (« trois » mois, « une » fois), from WORDING_EDITION; past
    // twenty too from FIGURES_EDITION.
    let integers = || conv.parameters.iter().filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)));
    let word = if edition >= FIGURES_EDITION { number_in_words } else { in_words };
    let words = |feminine: bool| -> Map<String, Value> {
        integers().map(|(k, n)| (k, Value::from(word(n, feminine)))).collect()
    };
    // From CEILING_EDITION, each amount in letters and figures (« vingt mille euros (20 000,00 €) »).
    if edition >= CEILING_EDITION {
        let amounts: Map<String, Value> = model
            .parameters
            .iter()
            .filter(|spec| spec.kind == ParameterType::Cents)
            .filter_map(|spec| Some((spec.key.clone(), conv.parameters.get(&spec.key)?.as_i64()?)))
            .map(|(key, cents)| (key, Value::from(amount_in_letters(cents))))
            .collect();
        context.insert("amounts", &amounts);
    }
    // The parameters as stored (a number as a number), for a clause that depends on a value
    // (« {% if values.part_academie > 0 %} »), where `params` holds the text it prints.
    context.insert("values", &conv.parameters);
    context.insert("in_words", &words(false));
    context.insert("in_words_feminine", &words(true));
    context
}

/// The article of the code de l'éducation that gives a collectivité of `kind` the charge of its
/// établissements of the second degré, and what it charges it with: L. 213-2 (the département,
/// the collèges), L. 214-6 (the région, the lycées and the établissements d'éducation spéciale).
fn rattachement(kind: OrgKind) -> Option<(&'static str, &'static str)> {
    match kind {
        OrgKind::Departement => Some(("L. 213-2", "du département pour les collèges")),
        OrgKind::Region => {
            Some(("L. 214-6", "de la région pour les lycées et les établissements d'éducation spéciale"))
        }
        _ => None,
    }
}

/// How long a convention from `start` to `end` (its last day, both `YYYY-MM-DD`) lasts, in
/// figures: whole months by the rule of a convention's default end (« 36 mois »), then the days
/// left (« 10 mois et 15 jours », « 20 jours »). The dates as given when they do not parse.
pub fn duration_text(start: &str, end: &str) -> String {
    let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let span = parse(start).zip(parse(end)).and_then(|(start, end)| Span::between(start, end));
    let Some(Span { months, days }) = span else { return format!("du {start} au {end}") };
    let days_text = match days {
        1 => "1 jour".to_string(),
        d => format!("{d} jours"),
    };
    match (months, days) {
        (0, _) => days_text,
        (m, 0) => format!("{m} mois"),
        (m, _) => format!("{m} mois et {days_text}"),
    }
}

/// Paragraphs of a text, split on blank lines.
fn paragraphs(text: &str) -> Vec<Block> {
    text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).map(|p| Block::Paragraph(p.into())).collect()
}

/// « Entre »: each party, who represents it and the act that empowers them, designated by its
/// label; the organisations of a party the model designates together (`designated_together`,
/// more than one of them), once, after the last of them.
pub(super) fn between_section(model: &ConventionModel, conv: &Convention) -> Section {
    let count = conv.parties.len();
    let together = |key: &str| -> Option<(&str, Vec<&super::Party>)> {
        let spec = model.parties.iter().find(|s| s.key == key)?;
        let designation = spec.designated_together.as_deref()?;
        let all: Vec<&super::Party> = conv.parties.iter().filter(|p| p.key == key).collect();
        (all.len() > 1).then_some((designation, all))
    };
    let between = conv
        .parties
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (and, end) = if i + 1 == count { (if count > 1 { "et " } else { "" }, ".") } else { ("", " ;") };
            let line = match together(&p.key) {
                None => signatories::between_line(p, conv.document_edition),
                Some((designation, all)) => {
                    let last = all.last().is_some_and(|l| std::ptr::eq(*l, p));
                    let description = signatories::between_description(p, conv.document_edition);
                    match last {
                        true => format!("{description}, {}", signatories::designated_together(&all, designation)),
                        false => description,
                    }
                }
            };
            Block::Paragraph(format!("{and}{line}{end}"))
        })
        .collect();
    Section { heading: "Entre".into(), blocks: between }
}

/// The « Vu » lines: the model's, then the parties' acts.
pub(super) fn vu_lines(
    model: &ConventionModel,
    conv: &Convention,
    context: &tera::Context,
) -> Result<Vec<String>, Problem> {
    let mut vu = model_vu_lines(model, context)?;
    vu.extend(signatories::vu_lines(conv));
    Ok(vu)
}

/// The model's « Vu » lines (the texts the convention is concluded under).
pub(super) fn model_vu_lines(model: &ConventionModel, context: &tera::Context) -> Result<Vec<String>, Problem> {
    // A line of a later edition only (« {% if edition >= 7 %}…{% endif %} ») renders empty before it.
    let rendered: Result<Vec<String>, Problem> =
        model.vu.iter().map(|line| Ok(render_clause(line, context)?.trim().to_string())).collect();
    Ok(rendered?.into_iter().filter(|line| !line.is_empty()).map(|line| format!("Vu {line}")).collect())
}

/// « Entre » ([`between_section`]), « Vu » ([`vu_lines`]), the préambule.
fn opening(model: &ConventionModel, conv: &Convention, context: &tera::Context) -> Result<Vec<Section>, Problem> {
    let vu = vu_lines(model, conv, context)?;
    let mut sections = vec![between_section(model, conv)];
    if !vu.is_empty() {
        sections.push(Section::new("Vu").bullets(vu));
    }
    let mut preamble = paragraphs(&render_clause(&model.preamble, context)?);
    if !preamble.is_empty() {
        preamble.push(Block::Paragraph("Il est convenu ce qui suit.".into()));
        sections.push(Section { heading: "Préambule".into(), blocks: preamble });
    }
    Ok(sections)
}

/// The parties' signature blocks closing the text: who signs, in what quality, « Fait à …, le … ».
pub(super) fn signature_section(conv: &Convention) -> Section {
    let copies = conv.parties.iter().filter(|p| p.signature_required).count();
    let copies = match conv.document_edition >= WORDING_EDITION {
        true => in_words(copies as i64, false),
        false => copies.to_string(),
    };
    let mut blocks = vec![Block::Paragraph(format!("Fait en {copies} exemplaires originaux."))];
    blocks.extend(signatories::signature_blocks(conv).into_iter().map(Block::Paragraph));
    Section { heading: "Signature des parties".into(), blocks }
}

/// A clause text rendered with the clauses' variables (its template parsed once per process).
fn render_clause(text: &str, context: &tera::Context) -> Result<String, Problem> {
    super::model::clause_template(text)
        .and_then(|tera| tera.render(super::model::CLAUSE, context))
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("clause rendering failed: {e:?}")))
}

/// The first edition whose « Caractéristiques » state an amount in euros (« 1 234,56 € »)
/// rather than the cents it is stored in.
const EUROS_EDITION: i64 = 3;

/// The first edition whose « Caractéristiques » and clauses state a date parameter as a French
/// date (« 1er septembre 2026 ») and a percentage in French (« 12,5 % »), rather than as stored
/// (« 2026-09-01 », « 12.5 »). Edition 3 shipped without it.
pub(super) const FRENCH_VALUES_EDITION: i64 = 4;

/// A parameter of a convention written in `edition` as its « Caractéristiques » list it:
/// (label, value). From [`EUROS_EDITION`] an amount reads in euros, under its label without
/// the « (centimes) » its form states; before, the cents as stored. From
/// [`FRENCH_VALUES_EDITION`] a date and a percentage read in French ([`parameter_text`]).
fn characteristic(spec: &ParameterSpec, value: &Value, edition: i64) -> (String, String) {
    let label = parameter_label(spec, edition).to_string();
    match (spec.kind, value.as_i64()) {
        (ParameterType::Cents, Some(cents)) if is_ceiling(spec, edition) => (label, ttc(cents)),
        (ParameterType::Cents, Some(cents)) if edition >= EUROS_EDITION => (label, documents::euros(cents)),
        (ParameterType::Percent | ParameterType::Date, _) if edition >= FRENCH_VALUES_EDITION => {
            (label, parameter_text(spec, value))
        }
        (ParameterType::Integer, _) if edition >= FIGURES_EDITION => (label, parameter_text_in(spec, value, edition)),
        _ => (label, format_value(value)),
    }
}

/// Whether `spec` is the académie's annual ceiling a text of `edition` states as art. 4 does
/// ([`PRORATED_CEILING_EDITION`]).
fn is_ceiling(spec: &ParameterSpec, edition: i64) -> bool {
    spec.key == super::model::ACADEMIE_CEILING && edition >= PRORATED_CEILING_EDITION
}

/// The label a text of `edition` states a parameter under: from [`EUROS_EDITION`], an amount's
/// without the « (centimes) » of its form (the text says euros); from
/// [`FRENCH_VALUES_EDITION`], a percentage's without its « (%) » (the value says it).
/// From [`CEILING_EDITION`], a count of months without its « (mois) » (the value says it:
/// [`parameter_text_in`]).
pub(super) fn parameter_label(spec: &ParameterSpec, edition: i64) -> &str {
    match spec.kind {
        ParameterType::Cents if edition >= EUROS_EDITION => spec.label.trim_end_matches(" (centimes)"),
        ParameterType::Percent if edition >= FRENCH_VALUES_EDITION => spec.label.trim_end_matches(" (%)"),
        ParameterType::Integer if edition >= CEILING_EDITION => spec.label.trim_end_matches(MONTHS_LABEL),
        _ => &spec.label,
    }
}

/// The label a text of `edition` under `model` states a parameter under: [`parameter_label`], and
/// from [`LABELS_EDITION`] as the text reads it: the académie party named as `model` designates it
/// ([`as_designated`]), the committee's meetings as the minimum its article stipulates.
pub(super) fn label_in(model: &ConventionModel, spec: &ParameterSpec, edition: i64) -> String {
    let label = parameter_label(spec, edition);
    if edition < LABELS_EDITION {
        return label.to_string();
    }
    match label {
        MEETINGS_LABEL => "Nombre minimal de réunions du comité de pilotage par an".to_string(),
        _ => as_designated(model, label),
    }
}

/// How the shipped models label the committee's meetings, which their article says are a minimum.
const MEETINGS_LABEL: &str = "Réunions du comité de pilotage par an";

/// `text` naming the académie party as `model` designates it where that is not « l'académie »
/// (« de l'académie » → « des services académiques », « pour l'académie » → « pour les services
/// académiques »).
fn as_designated(model: &ConventionModel, text: &str) -> String {
    let party = model.parties.iter().find(|p| p.key == "academie").filter(|p| p.label != "l'académie");
    match party {
        Some(p) => text
            .replace("de l'académie", &naming::contracted_de(&p.label))
            .replace("pour l'académie", &format!("pour {}", p.label)),
        None => text.to_string(),
    }
}

/// What the second degré's RGPD notes said in edition 11 that [`LABELS_EDITION`] words otherwise:
/// « la collectivité ou l'académie détermine …, elles deviennent responsables conjoints » (a verb
/// in the singular, a pronoun in the plural) names the one that determines them.
const NOTES_WORDING: [(&str, &str); 1] = [(
    "(choix imposé de services, exploitation des traces), elles deviennent responsables conjoints",
    "(choix imposé de services, exploitation des traces), celle qui les détermine ainsi devient responsable conjoint",
)];

/// The « Précisions » of the RGPD roles' annex in a text of `edition`: the model's notes, and from
/// [`LABELS_EDITION`] naming the académie party as the model designates it ([`as_designated`]) and
/// with [`NOTES_WORDING`].
fn rgpd_notes(model: &ConventionModel, edition: i64) -> String {
    let notes = model.rgpd.notes.trim();
    if edition < LABELS_EDITION {
        return notes.to_string();
    }
    let worded = NOTES_WORDING.iter().fold(notes.to_string(), |text, (before, after)| text.replace(before, after));
    as_designated(model, &worded)
}

/// How the label of a count of months ends in the form (« Préavis de retrait d'un membre (mois) »).
const MONTHS_LABEL: &str = " (mois)";

/// A count of a text of [`FIGURES_EDITION`] with the French thousands separator (« 4 600 »,
/// `documents::grouped`); `None` below a thousand or below zero, which read as they are stored.
fn count_text(n: i64) -> Option<String> {
    u64::try_from(n).ok().filter(|n| *n >= 1000).map(documents::grouped)
}

/// A parameter's value as a text of `edition` writes it: [`parameter_text`], and from
/// [`FIGURES_EDITION`] a count with its thousands separated ([`count_text`]).
/// From [`CEILING_EDITION`], a count of months with its unit (« 3 mois », [`parameter_label`]).
pub(super) fn parameter_text_in(spec: &ParameterSpec, value: &Value, edition: i64) -> String {
    let text = match (spec.kind, value.as_i64().and_then(count_text)) {
        (ParameterType::Integer, Some(count)) if edition >= FIGURES_EDITION => count,
        _ => parameter_text(spec, value),
    };
    match spec.kind == ParameterType::Integer && edition >= CEILING_EDITION && spec.label.ends_with(MONTHS_LABEL) {
        true => format!("{text} mois"),
        false => text,
    }
}

/// A parameter's value as an avenant of `edition` states it among its changes: from
/// [`AVENANT_CEILING_EDITION`] as the « Caractéristiques » do ([`characteristic`]: the académie's
/// ceiling in letters and figures, « toutes taxes comprises »), before by [`parameter_text_in`].
pub(super) fn amended_value(spec: &ParameterSpec, value: &Value, edition: i64) -> String {
    match edition >= AVENANT_CEILING_EDITION {
        true => characteristic(spec, value, edition).1,
        false => parameter_text_in(spec, value, edition),
    }
}

/// A number as a French text writes it: « 12,5 », « 80 ».
fn french_number(n: f64) -> String {
    n.to_string().replace('.', ",")
}

/// A percent as a French text writes it: « 80 % », « 12,5 % » (a no-break space before « % »).
pub(super) fn percent_text(percent: f64) -> String {
    format!("{}\u{a0}%", french_number(percent))
}

/// A parameter's value as a French text writes it, by its type: a percentage
/// ([`percent_text`]), an amount in euros, a date (« 1er septembre 2026 »); anything else as
/// [`format_value`].
pub(super) fn parameter_text(spec: &ParameterSpec, value: &Value) -> String {
    match (spec.kind, value) {
        (ParameterType::Percent, Value::Number(n)) => n.as_f64().map_or_else(|| n.to_string(), percent_text),
        (ParameterType::Cents, Value::Number(n)) => n.as_i64().map_or_else(|| n.to_string(), documents::euros),
        (ParameterType::Date, Value::String(day)) => french_date(day),
        _ => format_value(value),
    }
}

/// The parameters as the clauses read them (`params`): as stored, and from
/// [`FRENCH_VALUES_EDITION`] a date as a French date and a percentage as a French number
/// (« 12,5 »: the clause writes its « % » after it).
fn clause_params(model: &ConventionModel, conv: &Convention) -> Map<String, Value> {
    let mut params = conv.parameters.clone();
    if conv.document_edition < FRENCH_VALUES_EDITION {
        return params;
    }
    for spec in &model.parameters {
        let Some(value) = params.get_mut(&spec.key) else { continue };
        let figures = conv.document_edition >= FIGURES_EDITION;
        let french = match (spec.kind, &*value) {
            (ParameterType::Percent, Value::Number(n)) => n.as_f64().map(french_number),
            (ParameterType::Date, Value::String(day)) => Some(french_date(day)),
            (ParameterType::Integer, Value::Number(n)) if figures => n.as_i64().and_then(count_text),
            (ParameterType::Cents, Value::Number(n)) if figures => n.as_i64().map(documents::euros),
            _ => None,
        };
        if let Some(french) = french {
            *value = Value::String(french);
        }
    }
    params
}

pub(super) fn format_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "oui".into(),
        Value::Bool(false) => "non".into(),
        other => other.to_string(),
    }
}

/// The body of the document: what the parties sign. An avenant written in an edition that
/// cites the convention it amends ([`avenant::cites_amended`]) is rendered from `amended`
/// ([`avenant::amended_of`]); any other convention, from itself (`amended` unused).
/// Its names read as its edition shows them ([`shown_in`]), the convention's and those `amended` cites.
pub fn body(model: &ConventionModel, conv: &Convention, amended: Option<&Amended>) -> Result<Document, Problem> {
    let conv = &*shown_in(conv, conv.document_edition);
    let doc = match (avenant::cites_amended(conv), amended) {
        (false, _) => convention_body(model, conv),
        (true, Some(amended)) => avenant::body(model, conv, &amended.shown_in(conv.document_edition)),
        (true, None) => Err(Problem::new(
            ProblemKind::Internal,
            format!("the document of avenant {} is rendered without the convention it amends", conv.reference),
        )),
    }?;
    Ok(if conv.document_edition >= WORDING_EDITION { worded_document(doc) } else { doc })
}

/// The document of a convention, or of an avenant of edition 1 (its text never changes: it
/// restates the convention): the opening, [`stipulations`], the signature blocks.
fn convention_body(model: &ConventionModel, conv: &Convention) -> Result<Document, Problem> {
    let context = clause_context(model, conv);
    let mut sections = opening(model, conv, &context)?;
    sections.extend(stipulations(model, conv, &context)?);
    sections.push(signature_section(conv));
    Ok(Document {
        title: conv.title.clone(),
        // The status stays off the body: what was signed must hash the same once active.
        subtitle: Some(format!("Convention {}", conv.reference)),
        reference: Some(conv.reference.clone()),
        sections,
    })
}

/// The parties' table: quality, organisation, code.
pub(super) fn parties_table(conv: &Convention) -> Block {
    let rows = conv
        .parties
        .iter()
        .map(|p| vec![p.label.clone(), naming::of_org(p.org.kind, &p.org.name).official, p.org.code.clone()]);
    Block::Table { header: ["Qualité", "Organisation", "Code"].map(String::from).to_vec(), rows: rows.collect() }
}

/// The covered schools' table: UAI, name.
pub(super) fn schools_table(conv: &Convention) -> Block {
    let rows = conv.schools.iter().map(|s| vec![s.code.clone(), s.name.clone()]);
    Block::Table { header: ["UAI", "Établissement"].map(String::from).to_vec(), rows: rows.collect() }
}

/// What a cost share pays for as a text of `edition` states it: from [`FIGURES_EDITION`], a
/// share of more than 0 % whose model line has a `financial_item` (a money participation) reads
/// it rather than the in-kind `item`; from [`TRIPARTITE_CEILING_EDITION`], the one the code
/// words for a tripartite's académie (`code_text::financial_item`), and from [`TTC_SHARES_EDITION`]
/// for the second degré's établissement (at 0 %, its contributions in kind:
/// `code_text::in_kind_item`); else the item.
pub(super) fn share_item(model: &ConventionModel, share: &CostShareView, edition: i64) -> String {
    let line = model.cost_sharing.iter().find(|c| c.party == share.party && c.item == share.item);
    let financial = line.and_then(|c| match &c.financial_item {
        Some(financial) if edition >= FIGURES_EDITION => Some(financial.as_str()),
        _ => super::code_text::financial_item(model, c, edition),
    });
    match financial {
        Some(financial) if share.percent > 0.0 => financial.to_string(),
        _ => line.and_then(|c| super::code_text::in_kind_item(model, c, edition)).unwrap_or(&share.item).to_string(),
    }
}

/// The cost sharing's table: quality, organisation, what the share pays ([`share_item`]), the share.
pub(super) fn costs_table(model: &ConventionModel, conv: &Convention) -> Block {
    let rows = cost_shares(model, conv).into_iter().map(|s| {
        let item = share_item(model, &s, conv.document_edition);
        let label = model.parties.iter().find(|p| p.key == s.party).map_or(s.party, |p| p.label.clone());
        vec![
            label,
            naming::of_org(s.org.kind, &s.org.name).official,
            item,
            format!("{} %", s.percent).replace('.', ","),
        ]
    });
    Block::Table {
        header: ["Qualité", "Organisation", "Objet", "Part"].map(String::from).to_vec(),
        rows: rows.collect(),
    }
}

/// What a convention stipulates, between its opening and its signatures: parties,
/// characteristics, covered schools, clauses and annexes.
pub(super) fn stipulations(
    model: &ConventionModel,
    conv: &Convention,
    context: &tera::Context,
) -> Result<Vec<Section>, Problem> {
    let mut sections = vec![Section::new("Parties").block(parties_table(conv))];
    let mut fields = vec![
        ("Référence".to_string(), conv.reference.clone()),
        ("Modèle".to_string(), format!("{} (version {})", model.title, model.version)),
        ("Prise d'effet".to_string(), french_date(&conv.start_date)),
        ("Échéance".to_string(), french_date(&conv.end_date)),
    ];
    for spec in model.parameters.iter().filter(|p| p.key != "start_date") {
        if let Some(value) = conv.parameters.get(&spec.key) {
            let (_, text) = characteristic(spec, value, conv.document_edition);
            fields.push((label_in(model, spec, conv.document_edition), text));
            if let Some(ceiling) = value.as_i64().filter(|_| is_ceiling(spec, conv.document_edition)) {
                fields.extend(prorated_ceilings(conv, ceiling));
            }
        }
    }
    sections.push(Section::new("Caractéristiques").fields(fields));
    if !conv.schools.is_empty() {
        sections
            .push(Section::new(format!("Établissements couverts ({})", conv.schools.len())).block(schools_table(conv)));
    }
    for clause in &model.clauses {
        let text = super::code_text::clause_text(model, clause, conv.document_edition);
        let blocks = paragraphs(&render_clause(text, context)?);
        sections.push(Section { heading: clause.title.clone(), blocks });
    }
    if !model.indicators.is_empty() {
        sections.push(Section::new("Annexe – Indicateurs d'évaluation").table(
            ["Indicateur", "Définition", "Cible"],
            model.indicators.iter().map(|i| [i.name.clone(), i.definition.clone(), format!("{} {}", i.target, i.unit)]),
        ));
    }
    sections.push(Section::new("Annexe – Répartition des coûts").block(costs_table(model, conv)));
    let names = |keys: &[String]| -> String {
        let list: Vec<String> = conv
            .parties
            .iter()
            .filter(|p| keys.contains(&p.key))
            .map(|p| format!("{} ({})", naming::of_org(p.org.kind, &p.org.name).official, p.label))
            .collect();
        if list.is_empty() {
            "aucun".into()
        } else {
            list.join(", ")
        }
    };
    let named_party = |org: &OrgRef| conv.parties.iter().any(|p| p.key == model.rgpd.controller && p.org.id == org.id);
    let controller = match &conv.rgpd_controller {
        Some(org) if !named_party(org) => {
            let name = naming::of_org(org.kind, &org.name).official;
            format!("{name} (le directeur académique des services de l'éducation nationale, IA-DASEN)")
        }
        _ => names(std::slice::from_ref(&model.rgpd.controller)) + &executive_of_controller(model, conv),
    };
    let mut rgpd = vec![
        ("Responsable de traitement".to_string(), controller),
        ("Responsables conjoints".to_string(), names(&model.rgpd.joint_controllers)),
        ("Sous-traitants".to_string(), names(&model.rgpd.processors)),
    ];
    if !model.rgpd.notes.trim().is_empty() {
        rgpd.push(("Précisions".to_string(), rgpd_notes(model, conv.document_edition)));
    }
    sections.push(Section::new("Annexe – Rôles au sens du RGPD").fields(rgpd));
    sections.extend(processing::annex(model, conv));
    Ok(sections)
}

/// What the RGPD roles' annex adds after a controller party that is an EPLE, from [`EPLE_EDITION`]:
/// « , en la personne de son chef d'établissement », as article 8 and the notes name the
/// controller; nothing otherwise.
fn executive_of_controller(model: &ConventionModel, conv: &Convention) -> String {
    let eple = conv.parties.iter().filter(|p| p.key == model.rgpd.controller).any(signatories::is_eple);
    match eple && conv.document_edition >= EPLE_EDITION {
        true => ", en la personne de son chef d'établissement".into(),
        false => String::new(),
    }
}

/// SHA-256 of the body's HTML (set as its edition says, [`typography`]): what a signature
/// binds (`amended` as [`body`] takes it).
pub fn body_hash(model: &ConventionModel, conv: &Convention, amended: Option<&Amended>) -> Result<String, Problem> {
    let html = documents::to_html_as(&body(model, conv, amended)?, typography(conv));
    Ok(documents::sha256_hex(html.as_bytes()))
}

/// The whole document: the body (as frozen at submission once submitted) and the signature page.
/// A convention past its draft that has no frozen text (written before texts were frozen,
/// migration 0022) is rendered from what it holds now, and its signature page says so: that
/// text may differ from the one signed.
pub async fn full(store: &Store, model: &ConventionModel, conv: &Convention) -> Result<Document, Problem> {
    let frozen = match conv.status {
        Status::Draft => None,
        _ => super::frozen::latest(&mut *store.conn().await?, &conv.id).await?,
    };
    let reconstituted = frozen.is_none() && conv.status != Status::Draft;
    let frozen = match frozen {
        Some(frozen) => frozen,
        None => {
            let amended = avenant::amended_of(&mut *store.conn().await?, model, conv).await?;
            Frozen::of(body(model, conv, amended.as_ref())?, conv)
        }
    };
    let mut doc = with_signature_page(frozen, conv);
    if reconstituted {
        let signatures = doc.sections.last_mut().expect("the signature page");
        signatures.blocks.insert(1, Block::Paragraph(RECONSTITUTED.into()));
    }
    doc.sections.extend(termination_section(conv));
    Ok(doc)
}

/// The « Résiliation » block closing the complete document of a convention whose résiliation is
/// notified (domain review 38, G7): who notified it, the day it was recorded, the motif, the day
/// it takes effect. Rendered at each download after the signature page, outside the text signed
/// (whose frozen bytes and hash it leaves alone), so that the copy a party files shows it.
fn termination_section(conv: &Convention) -> Option<Section> {
    let (reason, effective) = (conv.termination_reason.as_ref()?, conv.termination_effective.as_ref()?);
    let mut fields = Vec::new();
    if let Some(notified) = &conv.termination_notified {
        fields.push(("Notifiée par".to_string(), notifier(conv, notified)));
        fields.push(("Enregistrée le".to_string(), french_date(&step_day(&notified.at))));
    }
    fields.push(("Motif".to_string(), reason.clone()));
    fields.push(("Prise d'effet".to_string(), french_date(effective)));
    let note = "Mention portée après la signature : elle ne fait pas partie du texte signé, dont l'empreinte reste \
                celle du document soumis à signature.";
    Some(Section { heading: "Résiliation".into(), blocks: vec![Block::Fields(fields), Block::Paragraph(note.into())] })
}

/// Who notified a résiliation, as the signature page names a signatory (domain review 39, G4):
/// « Karim Benali, maire, pour la Commune de Fresnes » (the quality the document gives its
/// representative, else their role's), never their address (the document goes to DPOs and
/// auditors, who do not see signatories' addresses); the party alone when the person is not
/// known by name, « un administrateur de la plateforme » for a résiliation agreed by all.
pub fn notifier(conv: &Convention, notified: &super::TerminationNotified) -> String {
    let party = notified.org_id.as_deref().and_then(|id| conv.parties.iter().find(|p| p.org.id == id));
    let Some(party) = party else {
        return match &notified.name {
            Some(name) => format!("{name}, administrateur de la plateforme"),
            None => "un administrateur de la plateforme".into(),
        };
    };
    acting_for(party, notified.name.as_deref(), notified.role.as_deref())
}

/// A person who acted for `party` (notified a résiliation, a non-reconduction), as the
/// signature page names a signatory: « Karim Benali, maire, pour la Commune de Fresnes » (the
/// quality the document gives its representative, else that of their `role` there); the party
/// alone when the person is not known by name (`name`, the directory's).
pub fn acting_for(party: &super::Party, name: Option<&str>, role: Option<&str>) -> String {
    let org = naming::of_org(party.org.kind, &naming::display_name(&party.org.name));
    let Some(name) = name else { return org.official };
    match party_quality(Some(party), name, role.unwrap_or_default()) {
        // The role's « pour la collectivité » is what « pour la Commune de Fresnes » says.
        q if q.starts_with("pour ") => format!("{name}, pour {}", org.article),
        q => format!("{name}, {q}, pour {}", org.article),
    }
}

/// What the signature page of a convention with no frozen text says of the text above it.
pub const RECONSTITUTED: &str = "Texte reconstitué : le document soumis à signature n'est pas conservé sur la \
     plateforme ; ce texte est rendu à partir des données actuelles de la convention et peut différer du texte signé, \
     dont l'empreinte ci-dessus ne vaut que pour lui.";

/// The quality in which a signing role engages its party, as the signature page states it.
fn quality(role: &str) -> &'static str {
    match role {
        "dan" => "pour les services académiques (délégué(e) académique au numérique)",
        "collectivite" => "pour la collectivité",
        "chef_etablissement" => "chef d'établissement ou directeur(trice) d'école",
        "coordinateur" => "pour le coordonnateur du groupement",
        _ => "représentant(e) de la partie",
    }
}

/// The day in France (`YYYY-MM-DD`) of a step's UTC timestamp.
pub(super) fn step_day(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| today_in_france(t.with_timezone(&chrono::Utc)).to_string())
        .unwrap_or_else(|_| at.get(..10).unwrap_or(at).to_string())
}

/// The frozen files of the current version, one line each: what a party checks with `sha256sum`.
fn frozen_files(conv: &Convention) -> Vec<String> {
    let current = conv.documents.iter().map(|f| f.version_no).max();
    conv.documents
        .iter()
        .filter(|f| Some(f.version_no) == current)
        .map(|f| format!("{}-v{}.{} : SHA-256 {}", conv.reference, f.version_no, f.format, f.sha256))
        .collect()
}

/// Who gave the step `s`: the person their account names (`delegation::person_name`: « Sophie
/// Durand », not the account's « Sophie Durand, directrice de l'école … », whose quality has its
/// own column), or for a signature given by délégation « Pour le maire et par délégation, Karim
/// Benali, adjoint au maire, arrêté n° … du … ».
fn signer(conv: &Convention, s: &super::Step) -> String {
    let party = conv.parties.iter().find(|p| p.key == s.step_key && p.org.id == s.org_id);
    match (&s.delegation, party) {
        (Some(delegation), Some(party)) => delegation.phrase(&s.user_name, party),
        _ => super::delegation::person_name(&s.user_name).to_string(),
    }
}

/// The quality the step `s` was given in: the délégation's, the representative's the document
/// names when they signed themselves, else the role's (« maire », « directrice d'école » rather
/// than « représentant de la collectivité »).
fn signer_quality(conv: &Convention, s: &super::Step) -> String {
    if s.kind == "visa" {
        return "service juridique".into();
    }
    if let Some(delegation) = &s.delegation {
        return delegation.quality.clone();
    }
    let party = conv.parties.iter().find(|p| p.key == s.step_key && p.org.id == s.org_id);
    party_quality(party, &s.user_name, &s.role)
}

/// The quality in which `person` (holding `role`) acts for `party`: the one the document gives
/// its representative when they are that person, else the role's.
fn party_quality(party: Option<&super::Party>, person: &str, role: &str) -> String {
    let named = party.and_then(|p| p.signatory.as_ref());
    match named.filter(|n| !n.quality.trim().is_empty() && super::delegation::is_representative(person, n)) {
        Some(n) => n.quality.trim().to_string(),
        None => quality(role).to_string(),
    }
}

fn with_signature_page(frozen: Frozen, conv: &Convention) -> Document {
    let Frozen { body: mut doc, party_names } = frozen;
    let mut blocks = vec![Block::Fields(vec![
        ("Statut".into(), conv.status.label().into()),
        (
            "Empreinte SHA-256 du document signé".into(),
            conv.document_hash.clone().unwrap_or_else(|| "document non encore soumis à signature".into()),
        ),
    ])];
    let files = frozen_files(conv);
    if !files.is_empty() {
        blocks.push(Block::Paragraph(
            "Le document soumis à signature est conservé tel quel ; l'empreinte ci-dessus est celle de son fichier \
             HTML (commande sha256sum). Fichiers téléchargeables (document signé) :"
                .into(),
        ));
        blocks.push(Block::Bullets(files));
    }
    let rows: Vec<Vec<String>> = conv
        .steps
        .iter()
        .filter(|s| s.voided_at.is_none())
        .map(|s| {
            let named = party_names.get(&s.org_id).cloned().unwrap_or_default();
            let named = match conv.document_edition >= DISPLAY_NAMES_EDITION {
                true => naming::display_name(&named),
                false => named,
            };
            let party = conv.parties.iter().find(|p| p.org.id == s.org_id);
            let official = party.map_or(named.clone(), |p| naming::of_org(p.org.kind, &named).official);
            let what = if s.kind == "visa" { "Visa juridique".to_string() } else { "Signature".into() };
            let done = format!("Fait le {}", french_date(&step_day(&s.at)));
            vec![what, official, signer(conv, s), signer_quality(conv, s), done, s.document_hash.clone()]
        })
        .collect();
    if rows.is_empty() {
        blocks.push(Block::Paragraph("Aucune signature recueillie à ce jour.".into()));
    } else {
        let header = ["Étape", "Partie", "Nom", "Qualité", "Date", "Empreinte signée"];
        blocks.push(Block::Table { header: header.map(String::from).to_vec(), rows });
    }
    for file in &conv.signed_files {
        blocks.push(Block::Paragraph(format!(
            "Exemplaire signé déposé : {} (SHA-256 {}), par {} le {}",
            file.file_name,
            file.sha256,
            file.uploaded_by,
            french_date(&step_day(&file.uploaded_at))
        )));
    }
    doc.sections.push(Section { heading: "Signatures".into(), blocks });
    doc
}

#[cfg(test)]
mod tests {
    use super::{
        amount_in_letters, characteristic, duration_in, duration_text, in_words, months_in_force, number_in_words,
        school_year_of, typography_of,
    };
    use crate::conventions::model::{ParameterSpec, ParameterType};
    use ent_documents::documents::Typography;

    fn spec(label: &str, kind: ParameterType) -> ParameterSpec {
        ParameterSpec {
            key: "k".into(),
            label: label.into(),
            kind,
            required: false,
            default: None,
            description: String::new(),
            min: None,
            max: None,
            required_when_positive: None,
        }
    }

    #[test]
    fn edition_3_shipped_as_written_and_edition_4_is_set_in_french() {
        for edition in [1, 2, 3] {
            assert_eq!(typography_of(edition), Typography::AsWritten, "edition {edition} was signed as written");
        }
        assert_eq!(typography_of(4), Typography::French);
        assert_eq!(typography_of(super::CURRENT_EDITION), Typography::French, "a convention drafted now");
    }

    #[test]
    fn a_date_and_a_percentage_read_in_french_from_edition_4_and_as_stored_before() {
        let part = spec("Part de la collectivité dans le coût du service (%)", ParameterType::Percent);
        let day = spec("Date du bilan", ParameterType::Date);
        let (half, date) = (serde_json::json!(12.5), serde_json::json!("2026-09-01"));
        assert_eq!(
            characteristic(&part, &half, 4),
            ("Part de la collectivité dans le coût du service".into(), "12,5\u{a0}%".into())
        );
        assert_eq!(characteristic(&part, &serde_json::json!(80), 4).1, "80\u{a0}%");
        assert_eq!(characteristic(&day, &date, 4), ("Date du bilan".into(), "1er septembre 2026".into()));
        for edition in [1, 2, 3] {
            assert_eq!(
                characteristic(&part, &half, edition),
                ("Part de la collectivité dans le coût du service (%)".into(), "12.5".into()),
                "edition {edition} keeps the text it was signed with"
            );
            assert_eq!(characteristic(&day, &date, edition).1, "2026-09-01", "edition {edition}");
        }
        let count = spec("Nombre de comptes", ParameterType::Integer);
        assert_eq!(characteristic(&count, &serde_json::json!(250), 4).1, "250", "not a percentage");
    }

    #[test]
    fn an_amount_reads_in_euros_from_edition_3_and_as_cents_before() {
        let spec = |kind| spec("Montant estimé du marché (centimes)", kind);
        let amount = serde_json::json!(123_456_789);
        assert_eq!(
            characteristic(&spec(ParameterType::Cents), &amount, 3),
            ("Montant estimé du marché".into(), "1\u{a0}234\u{a0}567,89\u{a0}€".into())
        );
        for edition in [1, 2] {
            assert_eq!(
                characteristic(&spec(ParameterType::Cents), &amount, edition),
                ("Montant estimé du marché (centimes)".into(), "123456789".into()),
                "edition {edition} keeps the text it was signed with"
            );
        }
        assert_eq!(characteristic(&spec(ParameterType::Integer), &amount, 3).1, "123456789", "not money");
    }

    #[test]
    fn numbers_read_in_letters_past_twenty_from_edition_7_and_edition_6_keeps_its_figures() {
        let cases = [
            (0, "zéro"),
            (3, "trois"),
            (17, "dix-sept"),
            (21, "vingt et un"),
            (36, "trente-six"),
            (60, "soixante"),
            (71, "soixante et onze"),
            (77, "soixante-dix-sept"),
            (80, "quatre-vingts"),
            (81, "quatre-vingt-un"),
            (99, "quatre-vingt-dix-neuf"),
            (100, "cent"),
            (120, "cent vingt"),
            (200, "deux cents"),
            (236, "deux cent trente-six"),
        ];
        for (n, words) in cases {
            assert_eq!(number_in_words(n, false), words, "{n}");
        }
        assert_eq!(number_in_words(1, true), "une");
        assert_eq!(number_in_words(21, true), "vingt et une");
        assert_eq!(number_in_words(1000, false), "1000", "a count beyond is grouped elsewhere");
        assert_eq!(in_words(20, false), "vingt");
        assert_eq!(in_words(36, false), "36", "edition 6 shipped figures past twenty");
        assert_eq!(in_words(-1, false), "-1");
    }

    #[test]
    fn a_notice_in_months_reads_with_its_unit_from_edition_8_and_edition_7_keeps_its_label() {
        let notice = spec("Préavis de résiliation ou de non-reconduction (mois)", ParameterType::Integer);
        let three = serde_json::json!(3);
        assert_eq!(
            characteristic(&notice, &three, 8),
            ("Préavis de résiliation ou de non-reconduction".into(), "3 mois".into())
        );
        assert_eq!(
            characteristic(&notice, &three, 7),
            ("Préavis de résiliation ou de non-reconduction (mois)".into(), "3".into()),
            "edition 7 keeps the text it was signed with"
        );
        let count = spec("Nombre de comptes", ParameterType::Integer);
        assert_eq!(characteristic(&count, &serde_json::json!(4600), 8).1, "4\u{a0}600", "not a duration");
    }

    #[test]
    fn an_amount_reads_in_letters_then_figures() {
        assert_eq!(
            amount_in_letters(1_234_567),
            "douze mille trois cent quarante-cinq euros et soixante-sept centimes (12\u{a0}345,67\u{a0}€)"
        );
        assert_eq!(amount_in_letters(1), "un centime (0,01\u{a0}€)");
        assert_eq!(amount_in_letters(-100), "-1,00\u{a0}€", "no words for a negative amount");
    }

    #[test]
    fn a_duration_reads_in_letters_from_edition_7_and_in_figures_before() {
        assert_eq!(duration_in(7, "2026-09-01", "2029-08-31"), "trente-six mois");
        assert_eq!(duration_in(7, "2026-09-01", "2027-07-15"), "dix mois et quinze jours");
        assert_eq!(duration_in(7, "2026-09-01", "2026-10-01"), "un mois et un jour");
        assert_eq!(duration_in(6, "2026-09-01", "2029-08-31"), "36 mois");
    }

    #[test]
    fn the_duration_is_the_convention_own_in_months_then_days() {
        assert_eq!(duration_text("2026-09-01", "2029-08-31"), "36 mois");
        assert_eq!(duration_text("2026-09-01", "2027-08-31"), "12 mois");
        assert_eq!(duration_text("2026-09-01", "2028-02-29"), "18 mois");
        assert_eq!(duration_text("2026-01-31", "2026-02-28"), "1 mois", "to the last day of a shorter month");
        assert_eq!(duration_text("2026-09-01", "2027-07-15"), "10 mois et 15 jours");
        assert_eq!(duration_text("2026-09-01", "2026-09-20"), "20 jours");
        assert_eq!(duration_text("2026-09-01", "2026-10-01"), "1 mois et 1 jour");
    }

    #[test]
    fn a_month_counts_when_the_convention_is_in_force_on_its_15th() {
        let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        assert_eq!(school_year_of(day("2027-01-04")), 2026);
        assert_eq!(school_year_of(day("2026-09-01")), 2026);
        assert_eq!(school_year_of(day("2027-08-31")), 2026);
        // From 4 January: January to August; from the 16th, January no longer counts.
        assert_eq!(months_in_force(2026, day("2027-01-04"), day("2030-01-03")), 8);
        assert_eq!(months_in_force(2026, day("2027-01-16"), day("2030-01-03")), 7);
        assert_eq!(months_in_force(2026, day("2027-01-15"), day("2030-01-03")), 8);
        // To 3 January 2030: September to December 2029; to the 15th, January too.
        assert_eq!(months_in_force(2029, day("2027-01-04"), day("2030-01-03")), 4);
        assert_eq!(months_in_force(2029, day("2027-01-04"), day("2030-01-15")), 5);
        assert_eq!(months_in_force(2026, day("2026-09-01"), day("2029-08-31")), 12);
    }
}
