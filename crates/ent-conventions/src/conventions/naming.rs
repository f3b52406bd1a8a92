//! Organisations named as an official text names them: « la Commune d'Ivry-sur-Seine »,
//! « le Département du Val-de-Marne », « la DSDEN du Val-de-Marne », « l'Académie de
//! Créteil », with French elision and contraction (« de l'Académie », « du Val-de-Marne »).

use ent_kernel::kernel::roles::OrgKind;
use ent_platform::registry::{fold, OrgRef};
use serde::Serialize;

/// How a document names one organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Designation {
    /// « Commune de Fresnes », « DSDEN du Val-de-Marne ».
    pub official: String,
    /// With its article: « la Commune de Fresnes », « l'Académie de Créteil ».
    pub article: String,
    /// After « de »: « de la Commune de Fresnes », « du Département du Val-de-Marne ».
    pub of: String,
    /// Grammatical gender of `official` (« représentée » or « représenté »).
    pub feminine: bool,
}

impl Designation {
    /// « représentée » or « représenté », agreeing with the organisation.
    pub fn represented(&self) -> &'static str {
        if self.feminine {
            "représentée"
        } else {
            "représenté"
        }
    }
}

fn starts_with_vowel(text: &str) -> bool {
    fold(text).starts_with(['a', 'e', 'i', 'o', 'u', 'y'])
}

/// « de » before a proper name: « de Fresnes », « d'Ivry-sur-Seine », « du Kremlin-Bicêtre »,
/// « des Lilas », « de La Réunion », « de L'Haÿ-les-Roses ».
pub fn de(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("Le ") {
        format!("du {rest}")
    } else if let Some(rest) = name.strip_prefix("Les ") {
        format!("des {rest}")
    } else if starts_with_vowel(name) {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
}

/// « le », « la » or « l' » before `text`.
fn with_article(text: &str, feminine: bool) -> String {
    if starts_with_vowel(text) {
        format!("l'{text}")
    } else if feminine {
        format!("la {text}")
    } else {
        format!("le {text}")
    }
}

/// « de » contracted with the article of `article_form` (« le X » → « du X »).
fn contracted_de(article_form: &str) -> String {
    match article_form.strip_prefix("le ") {
        Some(rest) => format!("du {rest}"),
        None => match article_form.strip_prefix("les ") {
            Some(rest) => format!("des {rest}"),
            None => format!("de {article_form}"),
        },
    }
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
    } else if starts_with_vowel(name) || first == "Hérault" {
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
    let article = with_article(&official, feminine);
    Designation { of: contracted_de(&article), official, article, feminine }
}

/// The official designation of an organisation of the registry.
pub fn of_org(org: &OrgRef) -> Designation {
    let name = org.name.trim();
    match org.kind {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn org(kind: OrgKind, name: &str) -> OrgRef {
        OrgRef { id: "x".into(), kind, code: "0".into(), name: name.into() }
    }

    #[test]
    fn organisations_read_as_in_an_official_text() {
        let commune = of_org(&org(OrgKind::Commune, "Ivry-sur-Seine"));
        assert_eq!(
            (commune.article.as_str(), commune.of.as_str()),
            ("la Commune d'Ivry-sur-Seine", "de la Commune d'Ivry-sur-Seine")
        );
        assert_eq!(of_org(&org(OrgKind::Commune, "Le Kremlin-Bicêtre")).official, "Commune du Kremlin-Bicêtre");
        let academie = of_org(&org(OrgKind::Academie, "Académie de Créteil"));
        assert_eq!(
            (academie.article.as_str(), academie.of.as_str()),
            ("l'Académie de Créteil", "de l'Académie de Créteil")
        );
        assert_eq!(of_org(&org(OrgKind::Dsden, "DSDEN – Val-de-Marne")).official, "DSDEN du Val-de-Marne");
        let departement = of_org(&org(OrgKind::Departement, "Val-de-Marne"));
        assert_eq!(departement.of, "du Département du Val-de-Marne");
        assert!(!departement.feminine);
        assert_eq!(
            of_org(&org(OrgKind::Departement, "Seine-Saint-Denis")).official,
            "Département de la Seine-Saint-Denis"
        );
        assert_eq!(of_org(&org(OrgKind::Departement, "Essonne")).official, "Département de l'Essonne");
        assert_eq!(of_org(&org(OrgKind::Departement, "Hauts-de-Seine")).official, "Département des Hauts-de-Seine");
        assert_eq!(of_org(&org(OrgKind::Departement, "Paris")).official, "Département de Paris");
        let ecole = of_org(&org(OrgKind::Etablissement, "Ecole élémentaire Robert Doisneau"));
        assert_eq!(
            (ecole.article.as_str(), ecole.represented()),
            ("l'Ecole élémentaire Robert Doisneau", "représentée")
        );
        let college = of_org(&org(OrgKind::Etablissement, "Collège Jean Moulin"));
        assert_eq!((college.article.as_str(), college.represented()), ("le Collège Jean Moulin", "représenté"));
    }
}
