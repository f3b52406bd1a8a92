//! French names as a text writes them, with elision and contraction: « de » before a proper
//! name (« de Fresnes », « d'Ivry-sur-Seine », « d'Académie… », « du Kremlin-Bicêtre »), the
//! article (« le », « la », « l' »), and organisations named as an official text names them:
//! « la Commune d'Ivry-sur-Seine », « le Département du Val-de-Marne », « la DSDEN du
//! Val-de-Marne », « l'académie de Créteil » (« de l'académie », « du Val-de-Marne »: the
//! territorial circonscription in lower case inside a sentence, as French administrative
//! typography writes it; [`of_org_capitalised`] for a text signed before that).
//! Every message, page, e-mail and document built with a name says « de » through [`de`];
//! templates through the `de` filter ([`register_filters`]). A name from the directory reads as
//! French typography writes it through [`display_name`] (the `shown` filter): « École », not
//! « Ecole »; the registry keeps the name as imported.

use crate::kernel::roles::OrgKind;
use crate::text::fold;
use serde::Serialize;
use std::collections::HashMap;

/// How a document names one organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Designation {
    /// « Commune de Fresnes », « DSDEN du Val-de-Marne ».
    pub official: String,
    /// With its article: « la Commune de Fresnes », « l'académie de Créteil ».
    pub article: String,
    /// After « de »: « de la Commune de Fresnes », « du Département du Val-de-Marne ».
    pub of: String,
    /// Grammatical gender of `official` (« représentée » or « représenté »).
    pub feminine: bool,
}

impl Designation {
    /// After « à »: « au Collège des Essais », « au Département du Val-de-Marne », « à la Commune
    /// de Fresnes », « à l'académie de Créteil ».
    pub fn to(&self) -> String {
        contracted_to(&self.article)
    }

    /// « elle » or « il », agreeing with the organisation.
    pub fn pronoun(&self) -> &'static str {
        if self.feminine {
            "elle"
        } else {
            "il"
        }
    }

    /// « représentée » or « représenté », agreeing with the organisation.
    pub fn represented(&self) -> &'static str {
        if self.feminine {
            "représentée"
        } else {
            "représenté"
        }
    }
}

/// The words starting with an h muet that names of organisations begin with: « d'Hyères »,
/// « de l'Hôtel de ville », « de l'Hérault ». Any other h is taken as aspirated, as most in
/// names are: « de Honfleur », « de la Haute-Garonne », « des Hauts-de-Seine ».
const H_MUET: [&str; 6] = ["herault", "heric", "henin", "hopital", "hotel", "hyeres"];

/// What opens a name before its first letter: quotes and spaces (« de » elides before
/// « « Arc-en-ciel » » as before its first letter).
const OPENING: [char; 9] = ['«', '"', '“', '‘', '\'', '’', ' ', '\u{a0}', '\u{202f}'];

/// Whether « de », « le » and « la » elide before `text` (« d' », « l' »): it starts with a
/// vowel, accented or capital ones included (« Île », « Œuvre », « Yerres »), or an h muet
/// ([`H_MUET`]), after any opening quote.
pub fn elides(text: &str) -> bool {
    let text = text.trim_start_matches(OPENING);
    let Some(c) = text.chars().next() else {
        return false;
    };
    // What `fold` makes of the first letter, a string built only for a letter out of ASCII.
    let initial = match c.is_ascii() {
        true => c.to_ascii_lowercase(),
        false => fold(c.encode_utf8(&mut [0; 4])).chars().next().unwrap_or(c),
    };
    match initial {
        'a' | 'e' | 'i' | 'o' | 'u' | 'y' => true,
        'h' => H_MUET.contains(&fold(text.split([' ', '-', '\'', '’']).next().unwrap_or(text)).as_str()),
        _ => false,
    }
}

/// « de » before a proper name: « de Fresnes », « d'Ivry-sur-Seine », « du Kremlin-Bicêtre »,
/// « des Lilas », « de La Réunion », « de L'Haÿ-les-Roses ».
pub fn de(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("Le ") {
        format!("du {rest}")
    } else if let Some(rest) = name.strip_prefix("Les ") {
        format!("des {rest}")
    } else if elides(name) {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
}

/// « le », « la » or « l' » before `text`: « le Collège Jean Moulin », « l'École … ».
pub fn le(text: &str, feminine: bool) -> String {
    if elides(text) {
        format!("l'{text}")
    } else if feminine {
        format!("la {text}")
    } else {
        format!("le {text}")
    }
}

/// The preposition of `forms` (before « le », before « les », before anything else) contracted
/// with the article of `article_form`: « du X », « des X », « de la X ».
fn contracted(article_form: &str, [before_le, before_les, other]: [&str; 3]) -> String {
    match (article_form.strip_prefix("le "), article_form.strip_prefix("les ")) {
        (Some(rest), _) => format!("{before_le} {rest}"),
        (_, Some(rest)) => format!("{before_les} {rest}"),
        _ => format!("{other} {article_form}"),
    }
}

/// « de » contracted with the article of `article_form` (« le X » → « du X »).
pub fn contracted_de(article_form: &str) -> String {
    contracted(article_form, ["du", "des", "de"])
}

/// « à » contracted with the article of `article_form` (« le X » → « au X », « les X » → « aux X »,
/// « la X » and « l'X » kept: « à la Commune de Fresnes », « à l'École … »), as [`Designation::to`].
fn contracted_to(article_form: &str) -> String {
    contracted(article_form, ["au", "aux", "à"])
}

/// « de » and its article before a title made of a common noun (a document's, written with its
/// capital: « Règlement de la consultation (RC) »), lower-cased as in a sentence ([`in_sentence`]):
/// « du règlement de la consultation (RC) », « de la note de présentation … », « de l'acte
/// d'engagement (AE) »; `feminine` is the gender of its noun. A proper name takes [`de`].
pub fn of_title(title: &str, feminine: bool) -> String {
    contracted_de(&le(&in_sentence(title), feminine))
}

/// A département with « de » and its article: « du Val-de-Marne », « de la Seine-Saint-Denis »,
/// « de l'Essonne », « des Hauts-de-Seine », « de Paris ».
pub fn of_departement(name: &str) -> String {
    const PLURAL: [&str; 11] = [
        "Hauts",
        "Hautes",
        "Alpes",
        "Bouches",
        "Côtes",
        "Deux",
        "Landes",
        "Ardennes",
        "Vosges",
        "Yvelines",
        "Pyrénées",
    ];
    const MASCULINE_IN_E: [&str; 5] = ["Rhône", "Finistère", "Vaucluse", "Maine", "Territoire"];
    const NO_ARTICLE: [&str; 3] = ["Paris", "Mayotte", "La Réunion"];
    let first = name.split(['-', ' ']).next().unwrap_or(name);
    if NO_ARTICLE.contains(&name) {
        de(name)
    } else if PLURAL.contains(&first) {
        format!("des {name}")
    } else if elides(name) {
        format!("de l'{name}")
    } else if first.ends_with('e') && !MASCULINE_IN_E.contains(&first) {
        format!("de la {name}")
    } else {
        format!("du {name}")
    }
}

/// Whether a name that already says what the organisation is starts with a feminine noun.
fn feminine_noun(name: &str) -> bool {
    let first = fold(name.split([' ', '-']).next().unwrap_or(name));
    ["communaute", "metropole", "ecole", "cite", "region", "academie", "commune", "direction"].contains(&first.as_str())
}

fn designation(official: String, feminine: bool) -> Designation {
    let article = le(&official, feminine);
    Designation { of: contracted_de(&article), official, article, feminine }
}

/// The official designation of an organisation of the registry, of its kind and name: an
/// académie with its article in lower case (« l'académie de Créteil », « de l'académie de
/// Créteil »), its name alone keeping its capital (« Académie de Créteil »).
pub fn of_org(kind: OrgKind, name: &str) -> Designation {
    let designation = of_org_capitalised(kind, name);
    match kind {
        OrgKind::Academie => {
            let lower = |text: &str| text.replacen("l'Académie", "l'académie", 1);
            Designation { article: lower(&designation.article), of: lower(&designation.of), ..designation }
        }
        _ => designation,
    }
}

/// [`of_org`] as the texts signed before the académie took its lower case wrote it (« l'Académie
/// de Créteil »): what a convention of an earlier edition keeps (`conventions::document`).
pub fn of_org_capitalised(kind: OrgKind, name: &str) -> Designation {
    let name = name.trim();
    match kind {
        OrgKind::Academie if name.starts_with("Académie") => designation(name.to_string(), true),
        OrgKind::Academie => designation(format!("Académie {}", de(name)), true),
        OrgKind::Dsden => {
            let departement = name.trim_start_matches("DSDEN").trim_start_matches([' ', '–', '-']).trim();
            designation(format!("DSDEN {}", of_departement(departement)), true)
        }
        OrgKind::Departement => designation(format!("Département {}", of_departement(name)), false),
        OrgKind::Region if name.starts_with("Région") => designation(name.to_string(), true),
        OrgKind::Region => designation(format!("Région {name}"), true),
        OrgKind::Commune => designation(format!("Commune {}", de(name)), true),
        OrgKind::SyndicatMixte if fold(name).starts_with("syndicat") => designation(name.to_string(), false),
        OrgKind::SyndicatMixte => designation(format!("Syndicat mixte {name}"), false),
        OrgKind::Epci | OrgKind::Etablissement => designation(name.to_string(), feminine_noun(name)),
        OrgKind::Editeur | OrgKind::Hebergeur => {
            Designation { official: name.to_string(), article: name.to_string(), of: de(name), feminine: true }
        }
    }
}

/// `text` (a title-like phrase: an object, a label) as it reads inside a sentence: its first
/// letter lower-cased when its first word is written in lower case after its capital
/// (« Fourniture, hébergement… » → « fourniture, hébergement… »); an acronym or a word in
/// capitals (« ENT des écoles », « SDET »), a one-letter word other than « À », and text that does
/// not open with a letter are kept as written. A proper noun opening the text cannot be told from
/// a common one: write such a text to be quoted (« « Fresnes numérique » »).
pub fn in_sentence(text: &str) -> String {
    let text = text.trim_start();
    let mut chars = text.chars();
    let Some(first) = chars.next().filter(|c| c.is_uppercase()) else { return text.to_string() };
    let word_goes_on_lower = chars.next().is_some_and(|c| c.is_lowercase());
    if word_goes_on_lower || first == 'À' {
        first.to_lowercase().chain(text.chars().skip(1)).collect()
    } else {
        text.to_string()
    }
}

/// Items joined as French writes a list: « A », « A et B », « A, B et C »; empty for none.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [first @ .., last] => format!("{} et {last}", first.join(", ")),
    }
}

/// The words of directory names written without the accent their capital takes in French
/// (the annuaire writes « Ecole maternelle … », « ECOLE PRIMAIRE … »): (as written, accented).
const UNACCENTED_CAPITALS: [(&str, &str); 4] =
    [("Ecole", "École"), ("Ecoles", "Écoles"), ("ECOLE", "ÉCOLE"), ("ECOLES", "ÉCOLES")];

/// A name of the directory as a document or a screen shows it: trimmed, each run of spaces one
/// space (« Ecole maternelle  Jules Grévy »), and « Ecole » written « École » (« ECOLE »,
/// « ÉCOLE »), a whole word wherever it stands (« l'Ecole », « Groupe scolaire Ecole … »).
/// The registry keeps the name as imported: only what is shown changes. The case of the rest
/// is the directory's (« les Frères Lumière », « Les Marguerites »): a proper name's article is
/// not told from a common word.
pub fn display_name(name: &str) -> String {
    let words = name.split([' ', '\t']).filter(|w| !w.is_empty());
    words.map(accented_word).collect::<Vec<_>>().join(" ")
}

/// `word` with [`UNACCENTED_CAPITALS`] accented, after an elided article (« l'Ecole »).
fn accented_word(word: &str) -> String {
    let (elided, rest) = match word.find(['\'', '’']) {
        Some(i) if i <= 2 => word.split_at(i + word[i..].chars().next().map_or(1, char::len_utf8)),
        _ => ("", word),
    };
    let end = rest.find(|c: char| !c.is_alphabetic()).unwrap_or(rest.len());
    let (head, tail) = rest.split_at(end);
    match UNACCENTED_CAPITALS.iter().find(|(written, _)| *written == head) {
        Some((_, accented)) => format!("{elided}{accented}{tail}"),
        None => word.to_string(),
    }
}

/// Registers the `de` filter: `{{ org.name | de }}` renders [`de`] of the name (« d'Ivry »);
/// and the `shown` filter: `{{ org.name | shown }}` renders [`display_name`] (« École … »).
pub fn register_filters(tera: &mut tera::Tera) {
    tera.register_filter("de", |value: &tera::Value, _: &HashMap<String, tera::Value>| match value.as_str() {
        Some(name) => Ok(tera::Value::String(de(name))),
        None => Err(tera::Error::msg("the filter `de` takes a text")),
    });
    tera.register_filter("shown", |value: &tera::Value, _: &HashMap<String, tera::Value>| match value.as_str() {
        Some(name) => Ok(tera::Value::String(display_name(name))),
        None => Err(tera::Error::msg("the filter `shown` takes a text")),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reads_as_french_writes_it() {
        let list = |items: &[&str]| and_list(&items.iter().map(|i| i.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["la Commune de Fresnes"]), "la Commune de Fresnes");
        assert_eq!(list(&["A", "B"]), "A et B");
        assert_eq!(list(&["A", "B", "C"]), "A, B et C");
    }

    #[test]
    fn an_organisation_after_a_takes_the_contracted_article() {
        let to = |kind, name: &str| of_org(kind, name).to();
        assert_eq!(to(OrgKind::Etablissement, "Collège des Essais"), "au Collège des Essais");
        assert_eq!(to(OrgKind::Departement, "Val-de-Marne"), "au Département du Val-de-Marne");
        assert_eq!(to(OrgKind::Commune, "Fresnes"), "à la Commune de Fresnes");
        assert_eq!(to(OrgKind::Etablissement, "École Robert Doisneau"), "à l'École Robert Doisneau");
        assert_eq!(to(OrgKind::Region, "Île-de-France"), "à la Région Île-de-France");
        assert_eq!(of_org(OrgKind::Commune, "Fresnes").pronoun(), "elle");
        assert_eq!(of_org(OrgKind::Departement, "Val-de-Marne").pronoun(), "il");
    }

    #[test]
    fn de_elides_before_a_vowel_an_accented_capital_and_an_h_muet() {
        let cases = [
            ("Fresnes", "de Fresnes"),
            ("Ivry-sur-Seine", "d'Ivry-sur-Seine"),
            ("Académie de Lyon", "d'Académie de Lyon"),
            ("École élémentaire Jaurès", "d'École élémentaire Jaurès"),
            ("ÉCOLE DU PORT", "d'ÉCOLE DU PORT"),
            ("Île-de-France", "d'Île-de-France"),
            ("Œuvre des écoles", "d'Œuvre des écoles"),
            ("Yerres", "d'Yerres"),
            ("Hyères", "d'Hyères"),
            ("Hôtel de ville", "d'Hôtel de ville"),
            ("Honfleur", "de Honfleur"),
            ("Hauts-de-Seine", "de Hauts-de-Seine"),
            ("Le Kremlin-Bicêtre", "du Kremlin-Bicêtre"),
            ("Les Lilas", "des Lilas"),
            ("La Réunion", "de La Réunion"),
            ("L'Haÿ-les-Roses", "de L'Haÿ-les-Roses"),
            ("L’Isle-Adam", "de L’Isle-Adam"),
            ("« Arc-en-ciel »", "d'« Arc-en-ciel »"),
            ("\"Oasis\" services", "d'\"Oasis\" services"),
            ("« Boréal »", "de « Boréal »"),
            ("", "de "),
        ];
        for (name, said) in cases {
            assert_eq!(de(name), said, "{name}");
        }
    }

    #[test]
    fn a_title_like_text_reads_in_lower_case_inside_a_sentence_unless_an_acronym() {
        let cases = [
            ("Fourniture, hébergement et maintenance d'un ENT", "fourniture, hébergement et maintenance d'un ENT"),
            ("Élaboration du SDET", "élaboration du SDET"),
            ("À bons de commande", "à bons de commande"),
            ("ENT des écoles", "ENT des écoles"),
            ("SDET", "SDET"),
            ("la fourniture d'un ENT", "la fourniture d'un ENT"),
            ("« Fresnes numérique »", "« Fresnes numérique »"),
            ("A", "A"),
            ("", ""),
        ];
        for (text, read) in cases {
            assert_eq!(in_sentence(text), read, "{text}");
        }
    }

    #[test]
    fn the_article_elides_as_de_does() {
        assert_eq!(le("établissement", false), "l'établissement");
        assert_eq!(le("Hôpital", false), "l'Hôpital");
        assert_eq!(le("Haute-Garonne", true), "la Haute-Garonne");
        assert_eq!(le("Collège Jean Moulin", false), "le Collège Jean Moulin");
        assert_eq!(of_departement("Hérault"), "de l'Hérault");
        assert_eq!(of_departement("Haute-Garonne"), "de la Haute-Garonne");
    }

    #[test]
    fn a_directory_name_is_shown_with_its_accented_capital_and_single_spaces() {
        let cases = [
            ("Ecole élémentaire Robert Doisneau", "École élémentaire Robert Doisneau"),
            ("Ecole maternelle  Jules Grévy", "École maternelle Jules Grévy"),
            ("  ECOLE PRIMAIRE DU PORT ", "ÉCOLE PRIMAIRE DU PORT"),
            ("Groupe scolaire des Ecoles du centre", "Groupe scolaire des Écoles du centre"),
            ("Maison de l'Ecole", "Maison de l'École"),
            ("Ecole maternelle les Frères Lumière", "École maternelle les Frères Lumière"),
            ("École élémentaire Jaurès", "École élémentaire Jaurès"),
            ("Ecolex Ecoled'été", "Ecolex Ecoled'été"),
            ("Ecole-Valentin", "École-Valentin"),
            ("Collège Jean Moulin", "Collège Jean Moulin"),
            ("Ecole\tmaternelle", "École maternelle"),
            ("« Arc-en-ciel »", "« Arc-en-ciel »"),
            ("", ""),
        ];
        for (name, shown) in cases {
            assert_eq!(display_name(name), shown, "{name}");
        }
    }

    #[test]
    fn the_shown_filter_renders_display_name_in_a_template() {
        let mut tera = tera::Tera::default();
        register_filters(&mut tera);
        tera.add_raw_template("t.txt", "Pour {{ name | shown }}").unwrap();
        let mut context = tera::Context::new();
        context.insert("name", "Ecole maternelle  Jules Grévy");
        assert_eq!(tera.render("t.txt", &context).unwrap(), "Pour École maternelle Jules Grévy");
    }

    #[test]
    fn the_de_filter_renders_de_in_a_template() {
        let mut tera = tera::Tera::default();
        register_filters(&mut tera);
        tera.add_raw_template("t.txt", "Registre {{ name | de }}").unwrap();
        let mut context = tera::Context::new();
        context.insert("name", "Académie de Lyon");
        assert_eq!(tera.render("t.txt", &context).unwrap(), "Registre d'Académie de Lyon");
        context.insert("name", &3);
        assert!(tera.render("t.txt", &context).is_err(), "a number is no name");
    }

    #[test]
    fn a_title_takes_de_with_its_article_and_a_lower_case_noun() {
        let cases = [
            (
                "Cahier des clauses administratives particulières (CCAP)",
                false,
                "du cahier des clauses administratives particulières (CCAP)",
            ),
            ("Règlement de la consultation (RC)", false, "du règlement de la consultation (RC)"),
            (
                "Note de présentation du groupement de commandes",
                true,
                "de la note de présentation du groupement de commandes",
            ),
            ("Liste des membres du groupement", true, "de la liste des membres du groupement"),
            ("Acte d'engagement (AE)", false, "de l'acte d'engagement (AE)"),
            (
                "Annexe quantitative et bordereau des prix (BPU/DQE)",
                true,
                "de l'annexe quantitative et bordereau des prix (BPU/DQE)",
            ),
            ("SDET", false, "du SDET"),
        ];
        for (title, feminine, said) in cases {
            assert_eq!(of_title(title, feminine), said, "{title}");
        }
        assert_eq!(de("Règlement de la consultation (RC)"), "de Règlement de la consultation (RC)", "de is for names");
    }

    #[test]
    fn organisations_read_as_in_an_official_text() {
        let commune = of_org(OrgKind::Commune, "Ivry-sur-Seine");
        assert_eq!(
            (commune.article.as_str(), commune.of.as_str()),
            ("la Commune d'Ivry-sur-Seine", "de la Commune d'Ivry-sur-Seine")
        );
        assert_eq!(of_org(OrgKind::Commune, "Le Kremlin-Bicêtre").official, "Commune du Kremlin-Bicêtre");
        let academie = of_org(OrgKind::Academie, "Académie de Créteil");
        assert_eq!(
            (academie.official.as_str(), academie.article.as_str(), academie.of.as_str()),
            ("Académie de Créteil", "l'académie de Créteil", "de l'académie de Créteil")
        );
        let signed = of_org_capitalised(OrgKind::Academie, "Académie de Créteil");
        assert_eq!(
            (signed.article.as_str(), signed.of.as_str()),
            ("l'Académie de Créteil", "de l'Académie de Créteil")
        );
        assert_eq!(of_org(OrgKind::Academie, "Amiens").article, "l'académie d'Amiens");
        assert_eq!(of_org(OrgKind::Academie, "Amiens").official, "Académie d'Amiens");
        assert_eq!(of_org(OrgKind::Dsden, "DSDEN – Val-de-Marne").official, "DSDEN du Val-de-Marne");
        let departement = of_org(OrgKind::Departement, "Val-de-Marne");
        assert_eq!(departement.of, "du Département du Val-de-Marne");
        assert!(!departement.feminine);
        assert_eq!(of_org(OrgKind::Departement, "Seine-Saint-Denis").official, "Département de la Seine-Saint-Denis");
        assert_eq!(of_org(OrgKind::Departement, "Essonne").official, "Département de l'Essonne");
        assert_eq!(of_org(OrgKind::Departement, "Hauts-de-Seine").official, "Département des Hauts-de-Seine");
        assert_eq!(of_org(OrgKind::Departement, "Paris").official, "Département de Paris");
        let ecole = of_org(OrgKind::Etablissement, "Ecole élémentaire Robert Doisneau");
        assert_eq!(
            (ecole.article.as_str(), ecole.represented()),
            ("l'Ecole élémentaire Robert Doisneau", "représentée")
        );
        let college = of_org(OrgKind::Etablissement, "Collège Jean Moulin");
        assert_eq!((college.article.as_str(), college.represented()), ("le Collège Jean Moulin", "représenté"));
        let editeur = of_org(OrgKind::Editeur, "Itop Éducation");
        assert_eq!(editeur.of, "d'Itop Éducation");
    }
}
