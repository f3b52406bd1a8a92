//! The clauses of Art. 28(3) RGPD binding the party that processes the ENT's data for the
//! controller (the collectivité): subject and duration, nature and purpose, types of data
//! and categories of data subjects (from the services the tenants of its parties and schools
//! run, as last applied, with those whose data they still hold, or are requested with before
//! they are applied, in the configured catalog, the degree's base bouquet standing in for a
//! school no tenant serves; special categories flagged), confidentiality, security,
//! sub-processors (the vendor and host of the tenants when known, « à compléter » otherwise),
//! assistance, end of processing, audits,
//! and the duty to warn about an unlawful instruction.

use super::document::{
    ANNEX_ONCE_EDITION, BOUQUET_LIST_EDITION, BREACH_DEADLINE_EDITION, CONTROLLER_DUTIES_EDITION,
    SCHOOL_SUBJECTS_EDITION, SUBPROCESSORS_CLAUSE_EDITION, WORDING_EDITION,
};
use super::model::ConventionModel;
use super::{Convention, Party, ProcessedTenant};
use ent_documents::documents::{Block, Document, Section};
use ent_kernel::clock::french_date;
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::naming;
use ent_platform::catalog::{distinct, processed_data, BouquetKind, Catalog, Service};
use ent_platform::registry::{Degree, OrgRef};
use std::sync::{Arc, OnceLock, RwLock};

/// The catalog the application was configured with (`use_catalog`, when its state is built).
static CONFIGURED: RwLock<Option<Arc<Catalog>>> = RwLock::new(None);

/// Makes `catalog` (the configuration's `catalog_dir`) the one the annex reads services from.
pub fn use_catalog(catalog: Arc<Catalog>) {
    if let Ok(mut configured) = CONFIGURED.write() {
        *configured = Some(catalog);
    }
}

/// The configured catalog, else the shipped one (read once).
fn catalog() -> Arc<Catalog> {
    if let Some(configured) = CONFIGURED.read().ok().and_then(|c| c.clone()) {
        return configured;
    }
    static SHIPPED: OnceLock<Arc<Catalog>> = OnceLock::new();
    SHIPPED.get_or_init(|| Arc::new(Catalog::load(None).unwrap_or_default())).clone()
}

/// The degree of the schools a model covers: écoles are the premier degré.
fn degree(model: &ConventionModel) -> Degree {
    let ecoles = model.parties.iter().flat_map(|p| &p.etab_types).chain(&model.covers.etab_types).any(|t| t.is_ecole());
    let communes = model.parties.iter().any(|p| p.kinds.contains(&OrgKind::Commune));
    if ecoles || communes {
        Degree::D1
    } else {
        Degree::D2
    }
}

/// The services `tenant` processes, as the catalog describes them: those it runs (last
/// applied) and whose data it still holds once applied (a code the catalog no longer has is
/// left out: nothing describes its data); the catalog's resolution of its bouquet and options
/// while it is not applied yet (`None` when that does not resolve).
fn tenant_services<'c>(catalog: &'c Catalog, tenant: &ProcessedTenant) -> Option<Vec<&'c Service>> {
    match &tenant.services {
        Some(codes) => Some(codes.iter().filter_map(|code| catalog.service(code)).collect()),
        None => {
            let refs: Vec<&str> = tenant.options.iter().map(String::as_str).collect();
            catalog.resolve(&tenant.bouquet, &refs).ok()
        }
    }
}

/// A bouquet the convention's processing runs: its name and those of its options, as the
/// catalog names them (the code when the catalog no longer has it).
#[derive(Debug, Clone, PartialEq)]
struct Bouquet {
    name: String,
    options: Vec<String>,
}

impl Bouquet {
    /// « Socle premier degré + Option visioconférence, Option exercices (Moodle) »: how a text
    /// before [`BOUQUET_LIST_EDITION`] names it.
    fn label(&self) -> String {
        match self.options.is_empty() {
            true => self.name.clone(),
            false => format!("{} + {}", self.name, self.options.join(", ")),
        }
    }
}

/// The bouquets of the « Nature et finalités » item as a text of `edition` names them: from
/// [`BOUQUET_LIST_EDITION`], each bouquet and option once, as a French list (« Socle premier
/// degré, Option visioconférence et Option exercices (Moodle) »: `naming::and_list`); before, each
/// tenant's [`Bouquet::label`] once, joined by « ; » (« Socle premier degré + Option
/// visioconférence, Option exercices (Moodle) ; Socle premier degré » when a school no tenant
/// serves stands on the base bouquet). Empty when there is none.
fn bouquets_text(bouquets: &[Bouquet], edition: i64) -> String {
    if edition < BOUQUET_LIST_EDITION {
        return distinct(bouquets.iter().map(Bouquet::label)).join(" ; ");
    }
    let names = bouquets.iter().flat_map(|b| std::iter::once(&b.name).chain(&b.options)).cloned();
    naming::and_list(&distinct(names))
}

/// (bouquets, services) of the convention's processing in the configured `catalog`: what
/// the tenants of its parties and schools run ([`tenant_services`]: as applied, or as requested
/// before they are), and the degree's base
/// bouquet for each covered school none of them serves (for the model's degree when the
/// convention has neither tenant nor school yet).
fn processed_services<'c>(
    catalog: &'c Catalog,
    model: &ConventionModel,
    conv: &Convention,
) -> (Vec<Bouquet>, Vec<&'c Service>) {
    let mut bouquets = Vec::new();
    let mut services: Vec<&Service> = Vec::new();
    let mut add = |bouquet: Bouquet, list: Vec<&'c Service>| {
        if !bouquets.contains(&bouquet) {
            bouquets.push(bouquet);
        }
        for s in list {
            if !services.iter().any(|known| known.code == s.code) {
                services.push(s);
            }
        }
    };
    let named = |code: &String| catalog.bouquet(code, None).map_or_else(|| code.clone(), |b| b.name.clone());
    for tenant in &conv.processed.tenants {
        let Some(resolved) = tenant_services(catalog, tenant) else { continue };
        let bouquet = Bouquet { name: named(&tenant.bouquet), options: tenant.options.iter().map(named).collect() };
        add(bouquet, resolved);
    }
    let mut unserved = conv.processed.unserved_degrees.clone();
    if conv.processed.tenants.is_empty() && unserved.is_empty() {
        unserved.push(degree(model));
    }
    for degree in unserved {
        let base =
            catalog.latest_bouquets().into_iter().find(|b| b.kind == BouquetKind::Base && b.degrees.contains(&degree));
        if let Some(base) = base {
            let bouquet = Bouquet { name: base.name.clone(), options: Vec::new() };
            add(bouquet, base.services.iter().filter_map(|code| catalog.service(code)).collect());
        }
    }
    (bouquets, services)
}

/// The first edition whose drafts name, when no tenant names an éditeur, the titulaire of the
/// accord-cadre binding their processor party (and the hébergeur declared under it), citing it
/// (`Convention::subprocessors_market`): a text submitted before kept « à compléter ».
pub const MARKET_SUBPROCESSORS_EDITION: i64 = 11;
const _: () = assert!(MARKET_SUBPROCESSORS_EDITION <= super::document::CURRENT_EDITION, "drafts render it");

/// How the sub-processors line names `o`: its official name, and for one taken from the
/// accord-cadre of a groupement de commandes ([`MARKET_SUBPROCESSORS_EDITION`]) that market.
fn subprocessor_named(conv: &Convention, o: &OrgRef) -> String {
    let name = naming::of_org(o.kind, &o.name).official;
    match conv.subprocessors_market.as_ref().filter(|m| m.named.contains(&o.id)) {
        Some(m) if o.kind == OrgKind::Editeur => format!("{name}, titulaire de l'accord-cadre {}", m.reference),
        Some(m) => format!("{name}, sous-traitant du titulaire de l'accord-cadre {}", m.reference),
        None => name,
    }
}

/// The sub-processors line: the known vendors and hosts, « à compléter » for the missing role;
/// from [`SUBPROCESSORS_CLAUSE_EDITION`] in one clause ([`subprocessors_clause`]).
fn subprocessors(conv: &Convention) -> String {
    let names = |kind: OrgKind| -> Vec<String> {
        conv.subprocessors.iter().filter(|o| o.kind == kind).map(|o| subprocessor_named(conv, o)).collect()
    };
    if conv.document_edition >= SUBPROCESSORS_CLAUSE_EDITION {
        return subprocessors_clause(&names(OrgKind::Editeur), &names(OrgKind::Hebergeur));
    }
    let named = |kind: OrgKind, role: &str| {
        let names = names(kind);
        if names.is_empty() {
            format!("{role} : à compléter")
        } else {
            format!("{role} : {}", names.join(", "))
        }
    };
    format!("{} ; {}", named(OrgKind::Editeur, "éditeur de la solution"), named(OrgKind::Hebergeur, "hébergeur"))
}

/// The vendors and hosts as one clause after « Sous-traitants ultérieurs : », each role with its
/// article and its names in apposition (« l'éditeur de la solution, Éditeur ENT SAS, et
/// l'hébergeur, Hébergeur SA »; « les éditeurs de la solution, A et B, »), a role no tenant names
/// « (à compléter) ».
fn subprocessors_clause(editeurs: &[String], hebergeurs: &[String]) -> String {
    let role = |names: &[String], one: &str, several: &str| match names {
        [] => format!("{one} (à compléter)"),
        [name] => format!("{one}, {name},"),
        _ => format!("{several}, {},", naming::and_list(names)),
    };
    let editeur = role(editeurs, "l'éditeur de la solution", "les éditeurs de la solution");
    let hebergeur = role(hebergeurs, "l'hébergeur", "les hébergeurs");
    format!("{editeur} et {}", hebergeur.trim_end_matches(','))
}

/// The party that processes the ENT's data for the controller under `model` (the collectivité
/// of a tripartite or bipartite convention): the head of the Art. 28 chain whose further links,
/// the vendors and hosts of the tenants, are the convention's sub-processors
/// ([`Convention::subprocessors`]). None under a model whose RGPD roles name no processor (the
/// convention constitutive of a groupement de commandes, which organises a purchase and no ENT
/// processing): such a convention has no sub-processor, and says so (« aucun »).
pub fn processor_party<'p>(model: &ConventionModel, parties: &'p [Party]) -> Option<&'p Party> {
    parties.iter().find(|p| model.rgpd.processors.contains(&p.key))
}

/// When the processor notifies a breach to the controller, in a text of `edition`: from
/// [`BREACH_DEADLINE_EDITION`] as the models' clause says it (one deadline, capped at 48 hours,
/// as the groupement's CCAP has it), before without a cap (as signed).
fn breach_deadline(edition: i64) -> &'static str {
    match edition >= BREACH_DEADLINE_EDITION {
        true => "dans les meilleurs délais et au plus tard 48 heures après en avoir pris connaissance",
        false => "dans les meilleurs délais après en avoir pris connaissance",
    }
}

/// The categories of persons of a premier-degré annex (from [`SCHOOL_SUBJECTS_EDITION`]): the
/// catalog's, each said once, the personnels once (« personnels » covers « personnels
/// enseignants »), and no documentaliste, whom an école does not have (« personnels enseignants et
/// documentalistes » is « personnels enseignants »).
pub fn school_subjects(subjects: Vec<String>) -> Vec<String> {
    let staff = |s: &str| s.starts_with("personnels");
    let all_staff = subjects.iter().any(|s| s == "personnels");
    let premier_degre = subjects.into_iter().map(|s| match s.as_str() {
        _ if all_staff && staff(&s) => "personnels".to_string(),
        "personnels enseignants et documentalistes" => "personnels enseignants".to_string(),
        _ => s,
    });
    distinct(premier_degre)
}

/// The categories of persons of a second-degré annex (from [`ANNEX_ONCE_EDITION`]), by the rule
/// [`school_subjects`] applies to an école since edition 5, for a degree that has
/// documentalistes: each said once, the personnels once when the catalog names them at large
/// (« personnels » covers every « personnels … »), else « personnels enseignants » within
/// « personnels enseignants et documentalistes » when both are listed.
pub fn secondary_subjects(subjects: Vec<String>) -> Vec<String> {
    const TEACHERS: &str = "personnels enseignants";
    const WITH_DOCUMENTALISTES: &str = "personnels enseignants et documentalistes";
    let all_staff = subjects.iter().any(|s| s == "personnels");
    let documentalistes = subjects.iter().any(|s| s == WITH_DOCUMENTALISTES);
    let once = subjects.into_iter().map(|s| match s.as_str() {
        _ if all_staff && s.starts_with("personnels") => "personnels".to_string(),
        TEACHERS if documentalistes => WITH_DOCUMENTALISTES.to_string(),
        _ => s,
    });
    distinct(once)
}

/// Types of data of the catalog that another type of the same annex covers: (covered, covering).
/// The messagerie's « Identité et identifiant ENT de l'expéditeur et des destinataires » covers
/// the casiers' « Identité de l'expéditeur et du destinataire ».
const COVERED_DATA: [(&str, &str); 1] = [(
    "Identité de l'expéditeur et du destinataire",
    "Identité et identifiant ENT de l'expéditeur et des destinataires",
)];

/// The types of data of an annex from [`ANNEX_ONCE_EDITION`]: each said once, a type another
/// listed type covers ([`COVERED_DATA`]) left out.
pub fn data_once(data: Vec<String>) -> Vec<String> {
    let listed = |label: &str| data.iter().any(|d| d == label);
    let covered = |d: &String| COVERED_DATA.iter().any(|(narrow, wide)| d == narrow && listed(wide));
    data.iter().filter(|d| !covered(d)).cloned().collect()
}

/// What closes a catalog category of data on offences and criminal convictions: « (…, art. 10
/// RGPD) ».
const OFFENCES: &str = ", art. 10 RGPD)";

/// What closes a catalog category that is, or may reveal, a special category of data: « (…, art. 9
/// RGPD) ».
const SPECIAL: &str = ", art. 9 RGPD)";

/// The article of the RGPD a sensitive catalog category falls under: 10 for data on offences and
/// criminal convictions (its parenthesis closes on « art. 10 RGPD) »), 9 otherwise (a special
/// category, or data that may reveal one: « un motif peut révéler une donnée de santé »).
pub fn sensitive_article(category: &str) -> u8 {
    match category.ends_with(OFFENCES) {
        true => 10,
        false => 9,
    }
}

/// What the data of a sensitive category are, in the RGPD's words, by the article it falls under
/// ([`sensitive_article`]): « donnée(s) sensible(s) au sens de l'article 9 du RGPD » (the special
/// categories of its article 9.1, « données sensibles » as its recital 10 names them, whose
/// processing rests on an exception of its article 9.2 that the service's legal basis names), or
/// « donnée(s) relative(s) aux condamnations pénales et aux infractions au sens de l'article 10
/// du RGPD ». The one phrasing of the note, for a category (`plural` false: the annex's and the
/// registers' parenthesis, [`one_parenthesis`]) or a kind of data (`plural`: the registers' AIPD).
/// The ENT processes none of them by design: only the categories a service of the catalog
/// declares `sensitive` are so named.
pub fn sensitive_note(article: u8, plural: bool) -> &'static str {
    match (article, plural) {
        (10, false) => "donnée relative aux condamnations pénales et aux infractions au sens de l'article 10 du RGPD",
        (10, true) => "données relatives aux condamnations pénales et aux infractions au sens de l'article 10 du RGPD",
        (_, false) => "donnée sensible au sens de l'article 9 du RGPD",
        (_, true) => "données sensibles au sens de l'article 9 du RGPD",
    }
}

/// A sensitive catalog category without the article its parenthesis cites, for a list that the
/// note of its article heads ([`sensitive_note`]): « Motifs (un motif peut révéler une donnée de
/// santé, art. 9 RGPD) » → « Motifs (un motif peut révéler une donnée de santé) ».
pub fn without_article(category: &str) -> String {
    match category.strip_suffix(OFFENCES).or_else(|| category.strip_suffix(SPECIAL)) {
        Some(open) => format!("{open})"),
        None => category.to_string(),
    }
}

/// A type of data as the annex names it from [`crate::conventions::document::WORDING_EDITION`]
/// (and the RGPD registers, its tag): a sensitive one in one parenthesis citing its article
/// ([`sensitive_note`]), where the catalog's label adds « (donnée sensible : articles 9 ou 10 du
/// RGPD) » to its own parenthesis — article 10 when the category cites it (« …, art. 10 RGPD) »:
/// offences and criminal convictions), article 9 otherwise (a health datum, « …, art. 9 RGPD) »).
pub fn one_parenthesis(label: &str) -> String {
    let Some(category) = label.strip_suffix(" (donnée sensible : articles 9 ou 10 du RGPD)") else {
        return label.to_string();
    };
    let note = sensitive_note(sensitive_article(category), false);
    match category.strip_suffix(OFFENCES).or_else(|| category.strip_suffix(SPECIAL)) {
        Some(open) => format!("{open}, {note})"),
        None => format!("{category} ({note})"),
    }
}

/// The controller's obligations towards its processor, the last item of the annex from
/// [`CONTROLLER_DUTIES_EDITION`] (art. 28(3), first subparagraph; the CNIL's model clauses).
const CONTROLLER_DUTIES: &str = "Obligations du responsable de traitement : il fournit au sous-traitant les données \
     nécessaires au traitement, documente par écrit toute instruction le concernant, veille au respect des \
     obligations prévues par le RGPD avant et pendant toute la durée du traitement, et supervise le traitement, y \
     compris par la réalisation d'audits et d'inspections auprès du sous-traitant.";

/// The heading of the Art. 28(3) annex ([`annex`]).
const ANNEX_HEADING: &str = "Annexe – Clauses de sous-traitance (article 28, paragraphe 3, du RGPD)";

/// What opens the list of the services in the annex's « Nature et finalités » item: « services
/// concernés (bouquet) : Portail ; Messagerie. ».
const SERVICES_LEAD: &str = "services concernés (";

/// The names of the services the Art. 28(3) annex of `doc` lists (the frozen text of a
/// convention: what was signed; of an avenant that cites the convention it amends, the annex of
/// its consolidated text, `avenant::CONSOLIDATED_HEADING`), as [`annex`] wrote them; empty when it
/// left them « à compléter ». `None` when `doc` has no such annex (a model whose RGPD roles name
/// no processor) or its services line does not read.
pub fn annex_service_names(doc: &Document) -> Option<Vec<String>> {
    let consolidated =
        |heading: &str| heading.strip_prefix(super::avenant::CONSOLIDATED_HEADING) == Some(ANNEX_HEADING);
    let section = doc.sections.iter().find(|s| s.heading == ANNEX_HEADING || consolidated(&s.heading))?;
    let items = section.blocks.iter().find_map(|b| match b {
        Block::Bullets(items) => Some(items),
        _ => None,
    })?;
    let line = items.iter().find_map(|item| item.split_once(SERVICES_LEAD).map(|(_, rest)| rest))?;
    let (_, names) = line.split_once(") : ")?;
    let names = names.strip_suffix('.').unwrap_or(names);
    if names == "à compléter" {
        return Some(Vec::new());
    }
    Some(names.split(" ; ").map(str::to_string).collect())
}

/// What an Art. 28(3) annex of a text of `edition` under `model` states of `services`: their names,
/// the types of their data and the categories of persons, each once, as that edition writes them.
struct Described {
    names: Vec<String>,
    data: Vec<String>,
    subjects: Vec<String>,
}

impl Described {
    fn of(model: &ConventionModel, edition: i64, services: &[&Service]) -> Described {
        let names = distinct(services.iter().map(|s| s.name.clone()));
        let (data, subjects) = processed_data(services.iter().copied());
        let data = match edition >= WORDING_EDITION {
            true => data.iter().map(|d| one_parenthesis(d)).collect(),
            false => data,
        };
        let data = if edition >= ANNEX_ONCE_EDITION { data_once(data) } else { data };
        let subjects = match degree(model) {
            Degree::D1 if edition >= SCHOOL_SUBJECTS_EDITION => school_subjects(subjects),
            Degree::D2 if edition >= ANNEX_ONCE_EDITION => secondary_subjects(subjects),
            _ => subjects,
        };
        Described { names, data, subjects }
    }
}

/// `list` joined as the annex lists it (« A ; B »), « à compléter » when empty.
fn or_complete(list: &[String]) -> String {
    if list.is_empty() {
        "à compléter".to_string()
    } else {
        list.join(" ; ")
    }
}

/// The ENT whose data the annex of a text of `edition` under `model` has processed: from
/// [`ANNEX_ONCE_EDITION`], the covered party's when it is an établissement (« de l'ENT de
/// l'établissement », « de l'ENT de l'école »: a tripartite covers one school), else the schools
/// of its degree (« de l'ENT des écoles couvertes », « … des établissements couverts »); before,
/// « de l'ENT des écoles et établissements couverts » whatever it covers.
fn covered_ent(model: &ConventionModel, edition: i64) -> String {
    if edition < ANNEX_ONCE_EDITION {
        return "de l'ENT des écoles et établissements couverts".into();
    }
    let covered = model.parties.iter().find(|p| model.covers.party.as_deref() == Some(p.key.as_str()));
    match (covered, degree(model)) {
        (Some(party), _) if party.kinds == [OrgKind::Etablissement] => {
            format!("de l'ENT {}", naming::contracted_de(&party.label))
        }
        (_, Degree::D1) => "de l'ENT des écoles couvertes".into(),
        (_, Degree::D2) => "de l'ENT des établissements couverts".into(),
    }
}

/// The items of the annex of `conv` that state what is processed: « Nature et finalités » with
/// the services, « Types de données », « Catégories de personnes concernées »; what an avenant
/// that changes them restates (`avenant::Changes`).
pub fn processing_items(model: &ConventionModel, conv: &Convention) -> [String; 3] {
    let catalog = catalog();
    let (bouquets, services) = processed_services(&catalog, model, conv);
    let bouquet = bouquets_text(&bouquets, conv.document_edition);
    let described = Described::of(model, conv.document_edition, &services);
    [
        format!(
            "Nature et finalités : hébergement, exploitation, maintenance et support de l'ENT, aux seules finalités \
             prévues par l'arrêté du 30 novembre 2006 modifié ; {SERVICES_LEAD}{}) : {}.",
            if bouquet.is_empty() { "bouquet à compléter".into() } else { bouquet },
            or_complete(&described.names)
        ),
        format!("Types de données : {}.", or_complete(&described.data)),
        format!("Catégories de personnes concernées : {}.", or_complete(&described.subjects)),
    ]
}

/// What is added to and removed from a list of the annex.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl ListChange {
    fn between(before: &[String], after: &[String]) -> ListChange {
        let missing =
            |these: &[String], those: &[String]| these.iter().filter(|t| !those.contains(t)).cloned().collect();
        ListChange { added: missing(after, before), removed: missing(before, after) }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// What the Art. 28(3) annex of the avenant `conv` changes of the one signed for the convention
/// it amends, whose services are `signed` (as [`annex_service_names`] reads them): the services
/// added and removed, and the types of data and categories of persons that follow from them —
/// both lists of services described by the configured catalog as the avenant's edition writes
/// them, so that a wording of an earlier edition or a service the catalog no longer has changes
/// no datum (a service it no longer has is removed when the avenant's annex does not list it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnnexChanges {
    pub services: ListChange,
    pub data: ListChange,
    pub subjects: ListChange,
}

impl AnnexChanges {
    pub fn between(model: &ConventionModel, signed: &[String], conv: &Convention) -> AnnexChanges {
        let catalog = catalog();
        let (_, services) = processed_services(&catalog, model, conv);
        let edition = conv.document_edition;
        let after = Described::of(model, edition, &services);
        let named = |name: &String| catalog.services.iter().find(|s| s.name == *name);
        let before = Described::of(model, edition, &signed.iter().filter_map(named).collect::<Vec<_>>());
        AnnexChanges {
            services: ListChange::between(signed, &after.names),
            data: ListChange::between(&before.data, &after.data),
            subjects: ListChange::between(&before.subjects, &after.subjects),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.data.is_empty() && self.subjects.is_empty()
    }
}

/// The Art. 28(3) annex, when a party of the model processes data for the controller.
pub fn annex(model: &ConventionModel, conv: &Convention) -> Option<Section> {
    let processor = processor_party(model, &conv.parties)?;
    let designation = |kind, name: &str| super::document::designation(kind, name, conv.document_edition);
    let processor = designation(processor.org.kind, &processor.org.name).article;
    let controller = match &conv.rgpd_controller {
        Some(org) => designation(org.kind, &org.name).of,
        None => conv
            .parties
            .iter()
            .find(|p| p.key == model.rgpd.controller)
            .map(|p| designation(p.org.kind, &p.org.name).of)
            .unwrap_or_else(|| "du responsable de traitement".into()),
    };
    let [nature, data, subjects] = processing_items(model, conv);
    let mut items = vec![
        format!(
            "Objet et durée : {processor}, sous-traitant, traite pour le compte {} les données à caractère personnel \
             {}, du {} au {}, puis pendant la phase de réversibilité.",
            controller,
            covered_ent(model, conv.document_edition),
            french_date(&conv.start_date),
            french_date(&conv.end_date)
        ),
        nature,
        data,
        subjects,
        "Instructions : le sous-traitant ne traite les données que sur instruction documentée du responsable de \
         traitement, y compris pour tout transfert hors de l'Union européenne, qu'il n'effectue pas sans autorisation \
         écrite préalable."
            .into(),
        "Confidentialité : le sous-traitant veille à ce que les personnes autorisées à traiter les données s'engagent \
         à en respecter la confidentialité ou soient soumises à une obligation légale appropriée de confidentialité, \
         et ne leur donne accès qu'aux données nécessaires à leurs fonctions."
            .into(),
        "Sécurité (article 32 du RGPD) : hébergement au sein de l'Union européenne, chiffrement des échanges, \
         authentification forte des administrateurs, gestion et revue des habilitations, journalisation des accès, \
         sauvegardes chiffrées et restaurations testées, correctifs de sécurité appliqués sans délai."
            .into(),
        format!(
            "Sous-traitants ultérieurs : {}. Le sous-traitant leur impose par contrat les mêmes obligations et informe \
             le responsable de traitement de tout ajout ou remplacement, qui peut s'y opposer.",
            subprocessors(conv)
        ),
        "Droits des personnes : le sous-traitant aide le responsable de traitement à répondre aux demandes d'exercice \
         des droits (accès, rectification, effacement, limitation, opposition) et lui transmet sans délai celles \
         qu'il reçoit."
            .into(),
        format!(
            "Violations de données : le sous-traitant notifie au responsable de traitement toute violation de données \
             {}, avec les informations permettant sa notification à la CNIL dans les 72 heures ; il l'assiste pour \
             l'analyse d'impact et la consultation préalable.",
            breach_deadline(conv.document_edition)
        ),
        "Fin du traitement : au terme de la convention, selon le choix du responsable de traitement, le sous-traitant \
         restitue les données dans un format ouvert puis les supprime avec leurs copies, et en délivre une \
         attestation, sauf obligation légale de conservation."
            .into(),
        "Audits : le sous-traitant met à la disposition du responsable de traitement toutes les informations \
         nécessaires pour démontrer le respect de ses obligations et permet la réalisation d'audits, y compris \
         d'inspections, par le responsable de traitement ou un auditeur qu'il mandate, et y contribue."
            .into(),
        "Instruction illicite : le sous-traitant informe immédiatement le responsable de traitement si, selon lui, \
         une instruction constitue une violation du RGPD ou d'autres dispositions du droit de l'Union ou du droit \
         français relatives à la protection des données."
            .into(),
    ];
    if conv.document_edition >= CONTROLLER_DUTIES_EDITION {
        items.push(CONTROLLER_DUTIES.into());
    }
    Some(Section { heading: ANNEX_HEADING.into(), blocks: vec![Block::Bullets(items)] })
}

#[cfg(test)]
mod tests {
    use super::{
        annex_service_names, bouquets_text, breach_deadline, data_once, one_parenthesis, school_subjects,
        secondary_subjects, subprocessors_clause, without_article, Bouquet, ANNEX_HEADING,
    };
    use ent_documents::documents::{Block, Document, Section};

    /// Edition 12 names the sub-processors in one clause, each role with its article and its
    /// names in apposition: no second colon inside the item.
    #[test]
    fn the_sub_processors_read_as_one_clause_from_edition_12() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            subprocessors_clause(&names(&["Éditeur ENT SAS"]), &names(&["Hébergeur SA"])),
            "l'éditeur de la solution, Éditeur ENT SAS, et l'hébergeur, Hébergeur SA"
        );
        assert_eq!(
            subprocessors_clause(&names(&["A", "B"]), &[]),
            "les éditeurs de la solution, A et B, et l'hébergeur (à compléter)"
        );
        assert_eq!(
            subprocessors_clause(&[], &[]),
            "l'éditeur de la solution (à compléter) et l'hébergeur (à compléter)"
        );
        let line = format!("Sous-traitants ultérieurs : {}.", subprocessors_clause(&names(&["A"]), &names(&["H"])));
        assert_eq!(line.matches(" : ").count(), 1, "{line}");
    }

    /// A tenant of the école Doisneau on the socle with two options, and the socle the other
    /// schools of the commune stand on: edition 11 names each bouquet once, as a French list;
    /// edition 10 joined the tenants' labels, the socle twice.
    #[test]
    fn the_bouquets_read_as_a_french_list_each_once_from_edition_11() {
        let socle = |options: &[&str]| Bouquet {
            name: "Socle premier degré".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        let bouquets = [socle(&["Option visioconférence", "Option exercices (Moodle)"]), socle(&[])];
        assert_eq!(
            bouquets_text(&bouquets, 11),
            "Socle premier degré, Option visioconférence et Option exercices (Moodle)"
        );
        assert_eq!(
            bouquets_text(&bouquets, 10),
            "Socle premier degré + Option visioconférence, Option exercices (Moodle) ; Socle premier degré",
            "edition 10 keeps its bytes"
        );
        assert_eq!(bouquets_text(&[socle(&[]), socle(&[])], 11), "Socle premier degré");
        assert_eq!(
            bouquets_text(&[socle(&["Option visioconférence"])], 11),
            "Socle premier degré et Option visioconférence"
        );
        assert_eq!(bouquets_text(&[], 11), "");
    }

    /// The services a frozen annex lists read back, from a convention's text and from an
    /// avenant's consolidated text alike (what an avenant of that avenant compares its own with,
    /// and what the registers cover by the avenant in force).
    #[test]
    fn the_services_of_a_signed_annex_read_back_from_a_convention_and_from_an_avenant() {
        let annex = |heading: String, bouquets: &str| Document {
            title: "T".into(),
            subtitle: None,
            reference: None,
            sections: vec![Section {
                heading,
                blocks: vec![Block::Bullets(vec![
                    "Objet et durée : …".into(),
                    format!(
                        "Nature et finalités : … ; services concernés ({bouquets}) : Portail et annuaire ; \
                         Visioconférence."
                    ),
                ])],
            }],
        };
        let text = |heading: String| annex(heading, "Socle premier degré");
        let services = Some(vec!["Portail et annuaire".to_string(), "Visioconférence".to_string()]);
        assert_eq!(annex_service_names(&text(ANNEX_HEADING.into())), services);
        let listed = annex(ANNEX_HEADING.into(), "Socle premier degré et Option exercices (Moodle)");
        assert_eq!(annex_service_names(&listed), services, "edition 11's bouquets, a parenthesis closing the list");
        let consolidated = format!("{}{ANNEX_HEADING}", crate::conventions::avenant::CONSOLIDATED_HEADING);
        assert_eq!(annex_service_names(&text(consolidated)), services);
        assert_eq!(annex_service_names(&text("Annexe – Répartition des coûts".into())), None);
    }

    /// A sensitive category cites the article its own parenthesis names, article 9 when it
    /// names none; another category is kept as written.
    #[test]
    fn a_sensitive_category_cites_its_own_article_in_one_parenthesis() {
        let tagged =
            |category: &str| one_parenthesis(&format!("{category} (donnée sensible : articles 9 ou 10 du RGPD)"));
        assert_eq!(
            tagged("Motifs (un motif peut révéler une donnée de santé, art. 9 RGPD)"),
            "Motifs (un motif peut révéler une donnée de santé, donnée sensible au sens de l'article 9 du RGPD)"
        );
        assert_eq!(
            tagged("Signalements (faits pouvant constituer une infraction, art. 10 RGPD)"),
            "Signalements (faits pouvant constituer une infraction, donnée relative aux condamnations pénales et aux \
             infractions au sens de l'article 10 du RGPD)"
        );
        assert_eq!(tagged("Données de santé"), "Données de santé (donnée sensible au sens de l'article 9 du RGPD)");
        assert_eq!(one_parenthesis("Traces de connexion"), "Traces de connexion");
    }

    /// A list headed by its article's note names each category without the article it cites.
    #[test]
    fn a_category_without_its_article_keeps_the_rest_of_its_parenthesis() {
        assert_eq!(
            without_article("Motifs (un motif peut révéler une donnée de santé, art. 9 RGPD)"),
            "Motifs (un motif peut révéler une donnée de santé)"
        );
        assert_eq!(
            without_article("Signalements (faits pouvant constituer une infraction, art. 10 RGPD)"),
            "Signalements (faits pouvant constituer une infraction)"
        );
        assert_eq!(without_article("Données de santé"), "Données de santé");
    }

    #[test]
    fn a_school_annex_lists_the_personnels_once_and_no_documentaliste() {
        let listed = |subjects: &[&str]| school_subjects(subjects.iter().map(|s| s.to_string()).collect());
        let catalog = [
            "élèves (mineurs)",
            "responsables légaux",
            "personnels",
            "personnels enseignants et documentalistes",
            "personnels enseignants",
        ];
        assert_eq!(listed(&catalog), ["élèves (mineurs)", "responsables légaux", "personnels"]);
        assert_eq!(
            listed(&["élèves (mineurs)", "personnels enseignants et documentalistes", "personnels enseignants"]),
            ["élèves (mineurs)", "personnels enseignants"],
            "without the personnels at large, the teachers, once"
        );
    }

    /// Domain review 41, F9: the second degré's persons once, as the premier degré's since
    /// edition 5, its documentalistes kept when the personnels are not named at large.
    #[test]
    fn a_secondary_annex_lists_the_personnels_once_and_keeps_the_documentalistes() {
        let listed = |subjects: &[&str]| secondary_subjects(subjects.iter().map(|s| s.to_string()).collect());
        let socle_2d = [
            "élèves (mineurs)",
            "responsables légaux",
            "personnels",
            "personnels enseignants",
            "personnels enseignants et documentalistes",
        ];
        assert_eq!(listed(&socle_2d), ["élèves (mineurs)", "responsables légaux", "personnels"]);
        assert_eq!(
            listed(&["élèves (mineurs)", "personnels enseignants", "personnels enseignants et documentalistes"]),
            ["élèves (mineurs)", "personnels enseignants et documentalistes"],
            "without the personnels at large, the teachers within the teachers and documentalistes"
        );
        assert_eq!(
            listed(&["élèves (mineurs)", "personnels enseignants"]),
            ["élèves (mineurs)", "personnels enseignants"]
        );
    }

    /// The casiers' sender and recipient are within the messagerie's, when both are listed.
    #[test]
    fn a_type_of_data_another_covers_is_listed_once() {
        let once = |data: &[&str]| data_once(data.iter().map(|d| d.to_string()).collect());
        let messagerie = "Identité et identifiant ENT de l'expéditeur et des destinataires";
        let casiers = "Identité de l'expéditeur et du destinataire";
        assert_eq!(once(&[messagerie, "Traces de connexion", casiers]), [messagerie, "Traces de connexion"]);
        assert_eq!(once(&[casiers, "Fichiers déposés"]), [casiers, "Fichiers déposés"], "alone, it stays");
    }

    #[test]
    fn a_breach_is_notified_within_48_hours_from_edition_5_and_without_a_cap_before() {
        for edition in [1, 2, 3, 4] {
            assert_eq!(breach_deadline(edition), "dans les meilleurs délais après en avoir pris connaissance");
        }
        assert_eq!(
            breach_deadline(5),
            "dans les meilleurs délais et au plus tard 48 heures après en avoir pris connaissance"
        );
    }
}
