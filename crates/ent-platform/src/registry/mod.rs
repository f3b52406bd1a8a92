//! Organisation registry: académies, DSDEN, collectivités, établissements, vendors
//! and hosts; the *covers* and *funding* rules; the annuaire import.

pub mod codes;
pub mod etab_siren;
pub mod import;
pub mod import_lock;
pub mod invitations;
pub mod manage;
pub mod queries;
pub mod routes;
pub mod state;

use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::store::{Flag, Nullable};
use ent_kernel::text::fold;
use ent_kernel::{skip_serializing_none, text_enum};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use state::RegistryState;

pub use queries::missing_org;
pub use queries::{
    covering_parents, covers, funding_collectivite, get_org, list_orgs, resolve_field_org, resolve_org,
    resolve_readable_field,
};

/// Type of an établissement, from the annuaire's type and nature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EtabType {
    EcoleMaternelle,
    EcoleElementaire,
    EcolePrimaire,
    College,
    Lycee,
    LyceeProfessionnel,
    Erea,
}

impl EtabType {
    pub fn degree(self) -> Degree {
        if self.is_ecole() {
            Degree::D1
        } else {
            Degree::D2
        }
    }

    /// French label for people (`école élémentaire`).
    pub fn label(self) -> &'static str {
        match self {
            EtabType::EcoleMaternelle => "école maternelle",
            EtabType::EcoleElementaire => "école élémentaire",
            EtabType::EcolePrimaire => "école primaire",
            EtabType::College => "collège",
            EtabType::Lycee => "lycée",
            EtabType::LyceeProfessionnel => "lycée professionnel",
            EtabType::Erea => "EREA",
        }
    }

    pub fn is_ecole(self) -> bool {
        matches!(self, EtabType::EcoleMaternelle | EtabType::EcoleElementaire | EtabType::EcolePrimaire)
    }

    /// The kind of collectivité that funds a second-degree school of this type in
    /// `departement` (collège → département, lycée and EREA → région, but see
    /// [`SECONDARY_FUNDING`]); `None` for an école (its commune, or the EPCI it delegated to).
    pub fn secondary_funder(self, departement: Option<&str>) -> Option<OrgKind> {
        let d = departement.unwrap_or_default();
        let exception = SECONDARY_FUNDING.iter().find(|e| e.departements.contains(&d));
        (!self.is_ecole()).then(|| funder_of(exception, self))
    }
}

/// The degree of the schools a collectivité of `kind` funds: the écoles (premier degré) for a
/// commune and for the EPCI or syndicat mixte its communes delegate their ENT to; the collèges
/// and lycées (second degré) for a département and a région, whatever their exceptions
/// ([`SECONDARY_FUNDING`]); none for another kind (an établissement has its own `degree`).
pub fn funded_degree(kind: OrgKind) -> Option<Degree> {
    match kind {
        OrgKind::Commune | OrgKind::Epci | OrgKind::SyndicatMixte => Some(Degree::D1),
        OrgKind::Departement | OrgKind::Region => Some(Degree::D2),
        _ => None,
    }
}

/// Whether the collectivité `kind` `code` funds both the collèges and the lycées of its
/// territory (a [`SECONDARY_FUNDING`] exception: Corse, Martinique, Guyane, Mayotte).
pub fn funds_colleges_and_lycees(kind: OrgKind, code: &str) -> bool {
    SECONDARY_FUNDING.iter().any(|e| {
        let own = match kind {
            OrgKind::Region => e.region == code,
            OrgKind::Departement => e.departements.contains(&code),
            _ => false,
        };
        own && e.colleges == kind && e.lycees == kind
    })
}

/// Who funds a second-degree school of type `t` under `exception` (none: the general rule).
fn funder_of(exception: Option<&FundingException>, t: EtabType) -> OrgKind {
    match (exception, t) {
        (Some(e), EtabType::College) => e.colleges,
        (Some(e), _) => e.lycees,
        (None, EtabType::College) => OrgKind::Departement,
        (None, _) => OrgKind::Region,
    }
}

/// Where one collectivité holds both the département's and the région's powers over schools,
/// who funds the collèges and who the lycées (and EREA), named by the codes the annuaire gives.
pub struct FundingException {
    pub departements: &'static [&'static str],
    pub region: &'static str,
    pub colleges: OrgKind,
    pub lycees: OrgKind,
}

/// The exceptions to « collège → département, lycée → région »: the Collectivité de Corse
/// (since 1 January 2018, région code 94) and the collectivités territoriales uniques of
/// Martinique (02) and Guyane (03) fund collèges and lycées; the Département de Mayotte (976),
/// exercising a région's powers, funds its lycées too.
pub const SECONDARY_FUNDING: [FundingException; 4] = [
    FundingException { departements: &["2A", "2B"], region: "94", colleges: OrgKind::Region, lycees: OrgKind::Region },
    FundingException { departements: &["972"], region: "02", colleges: OrgKind::Region, lycees: OrgKind::Region },
    FundingException { departements: &["973"], region: "03", colleges: OrgKind::Region, lycees: OrgKind::Region },
    FundingException {
        departements: &["976"],
        region: "06",
        colleges: OrgKind::Departement,
        lycees: OrgKind::Departement,
    },
];

/// The types of school a département or région of `code` funds (none for another kind).
pub fn funded_types(kind: OrgKind, code: &str) -> Vec<EtabType> {
    let exception = SECONDARY_FUNDING.iter().find(|e| match kind {
        OrgKind::Departement => e.departements.contains(&code),
        _ => e.region == code,
    });
    let secondary = [EtabType::College, EtabType::Lycee, EtabType::LyceeProfessionnel, EtabType::Erea];
    secondary.into_iter().filter(|t| funder_of(exception, *t) == kind).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Degree {
    #[serde(rename = "1D")]
    D1,
    #[serde(rename = "2D")]
    D2,
}

impl Degree {
    pub fn as_str(self) -> &'static str {
        match self {
            Degree::D1 => "1D",
            Degree::D2 => "2D",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sector {
    Public,
    Prive,
}

impl Sector {
    pub fn as_str(self) -> &'static str {
        match self {
            Sector::Public => "public",
            Sector::Prive => "prive",
        }
    }
}

text_enum!(pub EtabType {
    EcoleMaternelle = "ecole_maternelle", EcoleElementaire = "ecole_elementaire", EcolePrimaire = "ecole_primaire",
    College = "college", Lycee = "lycee", LyceeProfessionnel = "lycee_professionnel", Erea = "erea",
});
text_enum!(pub Degree from [Degree::D1, Degree::D2]);
text_enum!(pub Sector from [Sector::Public, Sector::Prive]);

/// An organisation as the API shows it. Fields that do not apply to its kind are absent.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, sqlx::FromRow)]
pub struct Org {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: OrgKind,
    /// Natural code: UAI, INSEE, SIREN, or the département/académie/région code.
    pub code: String,
    pub name: String,
    pub siren: Option<String>,
    pub siret: Option<String>,
    #[sqlx(try_from = "Nullable<EtabType>")]
    pub etab_type: Option<EtabType>,
    pub nature_code: Option<String>,
    pub nature_label: Option<String>,
    #[sqlx(try_from = "Nullable<Sector>")]
    pub sector: Option<Sector>,
    #[sqlx(try_from = "Nullable<Degree>")]
    pub degree: Option<Degree>,
    pub commune_code: Option<String>,
    pub departement_code: Option<String>,
    pub academie_code: Option<String>,
    pub region_code: Option<String>,
    pub pupils: Option<i64>,
    #[sqlx(rename = "is_open", try_from = "Flag")]
    pub open: bool,
    pub email: Option<String>,
    /// ISO 3166-1 alpha-2 country of its seat (`FR` unless set): transfers outside the EU derive from it.
    pub country: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Org {
    /// An open French organisation known by its identity only (every other field empty,
    /// version 1): the start of a fixture or of a document rendered in a test.
    pub fn named(id: &str, kind: OrgKind, code: &str, name: &str) -> Org {
        Org {
            id: id.into(),
            kind,
            code: code.into(),
            name: name.into(),
            siren: None,
            siret: None,
            etab_type: None,
            nature_code: None,
            nature_label: None,
            sector: None,
            degree: None,
            commune_code: None,
            departement_code: None,
            academie_code: None,
            region_code: None,
            pupils: None,
            open: true,
            email: None,
            country: "FR".into(),
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    pub fn etab_type(&self) -> Option<EtabType> {
        self.etab_type
    }

    /// Not a private school: a collectivité covers and funds only public schools (one without
    /// a sector, from an annuaire without the column, is public). See `queries::covers_condition`.
    pub fn is_public(&self) -> bool {
        self.sector != Some(Sector::Prive)
    }

    /// How a screen or a document names it: its official designation, its directory name as
    /// shown (« Département du Val-de-Marne », « du Département du Val-de-Marne »).
    pub fn designation(&self) -> ent_kernel::naming::Designation {
        ent_kernel::naming::of_org(self.kind, &ent_kernel::naming::display_name(&self.name))
    }

    /// `kind:code`, the unambiguous way to name an organisation by code.
    pub fn qualified_code(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.code)
    }

    pub fn as_ref(&self) -> OrgRef {
        OrgRef { id: self.id.clone(), kind: self.kind, code: self.code.clone(), name: self.name.clone() }
    }
}

/// A short reference to an organisation, used in lists of parents and members.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, sqlx::FromRow)]
pub struct OrgRef {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: OrgKind,
    pub code: String,
    pub name: String,
}

/// The `LIKE` patterns a search text `q` matches in a folded name (`sort_name`): the
/// folded text and, when it holds a whole word « Saint », « Sainte », « St » or « Ste », the
/// same text with every such word written in full and with every one abbreviated.
/// Addresses and many names abbreviate them (`94100 ST MAUR DES FOSSES`), the official
/// names of the communes do not (Saint-Maur-des-Fossés): either spelling finds both.
pub fn name_patterns(q: &str) -> Vec<String> {
    let folded = fold(q).replace(['%', '_'], "");
    let words: Vec<&str> = folded.split(' ').collect();
    let spelt = |full: bool| {
        let word = |w: &str| match (w.trim_end_matches('.'), full) {
            ("st" | "saint", true) => "saint".to_string(),
            ("ste" | "sainte", true) => "sainte".to_string(),
            ("st" | "saint", false) => "st".to_string(),
            ("ste" | "sainte", false) => "ste".to_string(),
            _ => w.to_string(),
        };
        words.iter().map(|w| word(w)).collect::<Vec<_>>().join(" ")
    };
    let mut patterns = vec![format!("%{folded}%")];
    for text in [spelt(true), spelt(false)] {
        let pattern = format!("%{text}%");
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    patterns
}

/// `(column LIKE ? OR ...)` over [`name_patterns`]`(q)`, `or` (more SQL, its `?` bound to
/// `values`) inside the parentheses; and the values to bind, in order.
pub fn name_search(column: &str, q: &str, or: &str, values: &[&str]) -> (String, Vec<String>) {
    let patterns = name_patterns(q);
    let mut sql: Vec<String> = patterns.iter().map(|_| format!("{column} LIKE ?")).collect();
    if !or.is_empty() {
        sql.push(or.to_string());
    }
    let mut bound = patterns;
    bound.extend(values.iter().map(|v| v.to_string()));
    (format!("({})", sql.join(" OR ")), bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_collectivite_holding_both_powers_funds_both_kinds_of_school() {
        let funder = |t: EtabType, d: &str| t.secondary_funder(Some(d));
        assert_eq!(funder(EtabType::College, "94"), Some(OrgKind::Departement));
        assert_eq!(funder(EtabType::Lycee, "94"), Some(OrgKind::Region));
        assert_eq!(funder(EtabType::College, "2B"), Some(OrgKind::Region));
        assert_eq!(funder(EtabType::College, "972"), Some(OrgKind::Region));
        assert_eq!(funder(EtabType::Erea, "973"), Some(OrgKind::Region));
        assert_eq!(funder(EtabType::LyceeProfessionnel, "976"), Some(OrgKind::Departement));
        assert_eq!(funder(EtabType::EcolePrimaire, "976"), None);
        assert_eq!(funded_types(OrgKind::Departement, "2A"), []);
        assert_eq!(funded_types(OrgKind::Region, "94").len(), 4);
        assert_eq!(funded_types(OrgKind::Region, "06"), []);
        assert_eq!(
            funded_types(OrgKind::Region, "11"),
            [EtabType::Lycee, EtabType::LyceeProfessionnel, EtabType::Erea]
        );
        assert_eq!(funded_types(OrgKind::Departement, "976").len(), 4);
    }

    #[test]
    fn name_patterns_spell_saint_and_sainte_in_full_and_abbreviated() {
        assert_eq!(name_patterns("St-Maur"), ["%st maur%", "%saint maur%"]);
        assert_eq!(
            name_patterns("SAINTE Marie et St. Jean"),
            ["%sainte marie et st. jean%", "%sainte marie et saint jean%", "%ste marie et st jean%"]
        );
        assert_eq!(name_patterns("Créteil 50%"), ["%creteil 50%"], "no abbreviation: one pattern");
        assert_eq!(name_patterns("estelle"), ["%estelle%"], "only whole words");
        let (sql, values) = name_search("sort_name", "st maur", "code = ?", &["ST MAUR"]);
        assert_eq!(sql, "(sort_name LIKE ? OR sort_name LIKE ? OR code = ?)");
        assert_eq!(values, ["%st maur%", "%saint maur%", "ST MAUR"]);
    }

    #[test]
    fn kinds_round_trip_through_their_string() {
        for kind in OrgKind::ALL {
            assert_eq!(OrgKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        for t in EtabType::ALL {
            assert_eq!(EtabType::parse(t.as_str()), Some(t));
        }
    }
}
