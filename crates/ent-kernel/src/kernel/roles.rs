//! The kinds of organisations, the roles held at them and the actions routes
//! declare: the vocabulary of authorisation, shared by every layer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kinds of organisations; the string form is the API and database value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    Academie,
    /// The académie's services in one département, led by the IA-DASEN.
    Dsden,
    Region,
    Departement,
    Commune,
    Epci,
    SyndicatMixte,
    Etablissement,
    Editeur,
    Hebergeur,
}

impl OrgKind {
    /// French label for people.
    pub fn label(self) -> &'static str {
        match self {
            OrgKind::Academie => "académie",
            OrgKind::Dsden => "DSDEN",
            OrgKind::Region => "région",
            OrgKind::Departement => "département",
            OrgKind::Commune => "commune",
            OrgKind::Epci => "EPCI",
            OrgKind::SyndicatMixte => "syndicat mixte",
            OrgKind::Etablissement => "établissement",
            OrgKind::Editeur => "éditeur",
            OrgKind::Hebergeur => "hébergeur",
        }
    }

    /// Its name after the indefinite article: « une commune », « un EPCI ».
    pub fn with_article(self) -> String {
        let article = match self {
            OrgKind::Academie | OrgKind::Dsden | OrgKind::Region | OrgKind::Commune => "une",
            _ => "un",
        };
        format!("{article} {}", self.label())
    }

    /// Kinds identified by a SIREN, created by hand rather than imported.
    pub fn is_siren_identified(self) -> bool {
        matches!(self, OrgKind::Epci | OrgKind::SyndicatMixte | OrgKind::Editeur | OrgKind::Hebergeur)
    }

    /// Kinds that group communes (EPCI membership).
    pub fn groups_communes(self) -> bool {
        matches!(self, OrgKind::Epci | OrgKind::SyndicatMixte)
    }
}

/// Roles, from the personas of the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Dan,
    Collectivite,
    ChefEtablissement,
    SupportN1,
    SupportN2,
    SupportN3,
    Dpo,
    Coordinateur,
    Auditeur,
    /// A member of a school or commune staff (teacher, school head, agent) who opens support tickets.
    Usager,
}

impl Role {
    /// The kinds of organisation a binding of this role may name.
    pub fn org_kinds(self) -> &'static [OrgKind] {
        use OrgKind::*;
        match self {
            Role::Admin => &[],
            Role::Dan | Role::SupportN2 => &[Academie, Dsden],
            Role::Collectivite => &[Commune, Epci, SyndicatMixte, Departement, Region],
            Role::ChefEtablissement => &[Etablissement],
            Role::SupportN1 | Role::Usager => &[Etablissement, Commune],
            Role::SupportN3 => &[Editeur, Hebergeur],
            Role::Dpo => &[Academie, Dsden, Commune, Epci, SyndicatMixte, Departement, Region, Editeur, Hebergeur],
            Role::Coordinateur => &[Epci, SyndicatMixte, Departement, Region, Academie],
            Role::Auditeur => {
                &[Academie, Dsden, Region, Departement, Commune, Epci, SyndicatMixte, Etablissement, Editeur, Hebergeur]
            }
        }
    }
}
/// A named operation and the roles that may perform it.
#[derive(Debug)]
pub struct Action {
    pub name: &'static str,
    /// Writes answer 403 out of scope; reads 404.
    pub write: bool,
    pub roles: &'static [Role],
}

crate::text_enum!(pub OrgKind {
    Academie = "academie", Dsden = "dsden", Region = "region", Departement = "departement", Commune = "commune",
    Epci = "epci", SyndicatMixte = "syndicat_mixte", Etablissement = "etablissement", Editeur = "editeur",
    Hebergeur = "hebergeur",
});
crate::text_enum!(pub Role {
    Admin = "admin", Dan = "dan", Collectivite = "collectivite", ChefEtablissement = "chef_etablissement",
    SupportN1 = "support_n1", SupportN2 = "support_n2", SupportN3 = "support_n3", Dpo = "dpo",
    Coordinateur = "coordinateur", Auditeur = "auditeur", Usager = "usager",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_take_the_article_of_their_gender() {
        assert_eq!(OrgKind::Commune.with_article(), "une commune");
        assert_eq!(OrgKind::Dsden.with_article(), "une DSDEN");
        assert_eq!(OrgKind::Epci.with_article(), "un EPCI");
        assert_eq!(OrgKind::Etablissement.with_article(), "un établissement");
    }
}
