//! Organisation registry: académies, DSDEN, collectivités, établissements, vendors
//! and hosts; the *covers* and *funding* rules; the annuaire import.

pub mod codes;
pub mod import;
pub mod invitations;
pub mod manage;
pub mod queries;
pub mod routes;
pub mod state;

use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::store::{Flag, Nullable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use state::RegistryState;

pub use queries::missing_org;
pub use queries::{covering_parents, covers, funding_collectivite, get_org, list_orgs, resolve_field_org, resolve_org};

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

    pub fn is_ecole(self) -> bool {
        matches!(self, EtabType::EcoleMaternelle | EtabType::EcoleElementaire | EtabType::EcolePrimaire)
    }

    /// Lycées and EREA are funded by the région.
    pub fn is_lycee_like(self) -> bool {
        matches!(self, EtabType::Lycee | EtabType::LyceeProfessionnel | EtabType::Erea)
    }
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

ent_kernel::text_enum!(pub EtabType {
    EcoleMaternelle = "ecole_maternelle", EcoleElementaire = "ecole_elementaire", EcolePrimaire = "ecole_primaire",
    College = "college", Lycee = "lycee", LyceeProfessionnel = "lycee_professionnel", Erea = "erea",
});
ent_kernel::text_enum!(pub Degree from [Degree::D1, Degree::D2]);
ent_kernel::text_enum!(pub Sector from [Sector::Public, Sector::Prive]);

/// An organisation as the API shows it. Fields that do not apply to its kind are absent.
#[ent_kernel::skip_serializing_none]
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

/// Lower-case, accent-free form of a name, used for search and ordering.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let plain = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
            'ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' | 'ì' => 'i',
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ÿ' | 'ý' => 'y',
            'ñ' => 'n',
            'œ' => {
                out.push_str("oe");
                continue;
            }
            'æ' => {
                out.push_str("ae");
                continue;
            }
            '\'' | '’' | '-' => ' ',
            other => other,
        };
        out.push(plain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_removes_accents_and_case() {
        assert_eq!(fold("L'Haÿ-les-Roses"), "l hay les roses");
        assert_eq!(fold("École Œuvre"), "ecole oeuvre");
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
