//! Whose SIREN an établissement may carry, and which organisations hold a SIREN as a public body.
//!
//! A public école has no legal personality: its SIREN (and its SIRET) is its commune's. A public
//! EPLE (collège, lycée, EREA) is a public-law legal person with its own SIREN, which the INSEE
//! numbers, like the other public bodies of the État's sphere, from 1 (EPLEs: 19…). A private
//! établissement carries its organisme de gestion's, a private-law person's. Anything else an
//! annuaire row gives an établissement (an éditeur's SIREN, another commune's) is not its own:
//! the import drops it, registering its holder drops it, and it never makes the SIREN a public
//! body's for an award.

use super::codes;
use super::{EtabType, OrgKind, Sector};
use ent_kernel::error::Problem;
use ent_kernel::store::Store;

/// What an établissement is, as far as its SIREN goes.
#[derive(Debug, Clone, Copy)]
pub struct EtabSiren<'a> {
    pub etab_type: Option<EtabType>,
    pub sector: Option<Sector>,
    pub commune_code: Option<&'a str>,
    /// The SIREN the registry records for its commune, if any.
    pub commune_siren: Option<&'a str>,
}

impl EtabSiren<'_> {
    /// A public école: its SIREN can only be its commune's (one without a sector, from an
    /// annuaire without the column, is public).
    pub fn takes_its_communes(&self) -> bool {
        self.etab_type.is_some_and(EtabType::is_ecole) && self.sector != Some(Sector::Prive)
    }

    /// Whether `siren` is the commune's: the one the registry records for it, or the one the
    /// INSEE numbers it under ([`codes::commune_siren`]).
    pub fn is_communes(&self, siren: &str) -> bool {
        self.commune_siren == Some(siren) || self.commune_code.and_then(codes::commune_siren).as_deref() == Some(siren)
    }

    /// Why `siren` cannot be the établissement's own by the INSEE's numbering alone, whoever
    /// holds it or not (no registry read, so the same answer in and out of any scope): a public
    /// EPLE's is numbered from 1 (19…, as the État's public bodies); a private établissement's is
    /// its organisme de gestion's, a private-law person (an association, a company), never in
    /// the public ranges 1 (the État's sphere) or 2 (collectivités and their établissements
    /// publics). A public école takes its commune's ([`EtabSiren::is_communes`]): none here.
    pub fn numbering_refusal(&self, siren: &str) -> Option<&'static str> {
        match (self.sector, self.etab_type) {
            (Some(Sector::Prive), Some(_)) if siren.starts_with(['1', '2']) => Some(
                "un établissement privé a pour SIREN celui de son organisme de gestion, de droit privé, que l'INSEE \
                 ne numérote ni à partir de 1 ni à partir de 2 comme un organisme public",
            ),
            (Some(Sector::Prive), _) => None,
            _ if self.takes_its_communes() => None,
            (_, Some(_)) if !siren.starts_with('1') => Some(
                "un EPLE public (collège, lycée, EREA) a un SIREN que l'INSEE numérote à partir de 1, comme les \
                 organismes publics de l'État",
            ),
            _ => None,
        }
    }

    /// Whether the établissement holds `siren` as a public body: a public école its commune's,
    /// a public EPLE a SIREN of the public range its own is numbered in. A private
    /// établissement never does.
    pub fn holds_as_public_body(&self, siren: &str) -> bool {
        match (self.sector, self.etab_type) {
            (Some(Sector::Prive), _) => false,
            _ if self.takes_its_communes() => self.is_communes(siren),
            (_, Some(_)) => siren.starts_with('1'),
            (_, None) => false,
        }
    }
}

/// An organisation holding a SIREN, as [`holders`] reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Holder {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: OrgKind,
    pub siren: Option<String>,
    pub siret: Option<String>,
    #[sqlx(try_from = "ent_kernel::store::Nullable<EtabType>")]
    pub etab_type: Option<EtabType>,
    #[sqlx(try_from = "ent_kernel::store::Nullable<Sector>")]
    pub sector: Option<Sector>,
    pub commune_code: Option<String>,
    /// The SIREN the registry records for the établissement's commune.
    pub commune_siren: Option<String>,
}

impl Holder {
    /// Whether it holds `siren` as a public body: any organisation but an éditeur, an hébergeur
    /// or an établissement, and an établissement as [`EtabSiren::holds_as_public_body`] says.
    pub fn is_public_body(&self, siren: &str) -> bool {
        match self.kind {
            OrgKind::Editeur | OrgKind::Hebergeur => false,
            OrgKind::Etablissement => self.as_etab().holds_as_public_body(siren),
            _ => true,
        }
    }

    fn as_etab(&self) -> EtabSiren<'_> {
        EtabSiren {
            etab_type: self.etab_type,
            sector: self.sector,
            commune_code: self.commune_code.as_deref(),
            commune_siren: self.commune_siren.as_deref(),
        }
    }
}

/// The organisations that hold `siren` (nine digits): by their SIREN, their SIRET, or an EPCI's
/// or syndicat mixte's code, which is its SIREN.
pub async fn holders(conn: &mut sqlx::AnyConnection, siren: &str) -> Result<Vec<Holder>, Problem> {
    let holders = sqlx::query_as::<_, Holder>(
        "SELECT o.id, o.kind, o.siren, o.siret, o.etab_type, o.sector, o.commune_code, \
         (SELECT c.siren FROM orgs c WHERE c.kind = 'commune' AND c.code = o.commune_code) AS commune_siren \
         FROM orgs o WHERE o.siren = $1 OR SUBSTR(o.siret, 1, 9) = $1 \
         OR (o.kind IN ('epci', 'syndicat_mixte') AND o.code = $1) ORDER BY o.kind, o.code",
    )
    .bind(siren)
    .fetch_all(&mut *conn)
    .await?;
    Ok(holders)
}

/// Whether the registry holds `siren` for a public body ([`Holder::is_public_body`]): never the
/// titulaire of a marché, nor an éditeur or hébergeur to register.
pub async fn held_by_public_body(store: &Store, siren: &str) -> Result<bool, Problem> {
    let mut conn = store.pool().acquire().await?;
    Ok(holders(&mut conn, siren).await?.iter().any(|h| h.is_public_body(siren)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etab(etab_type: EtabType, sector: Sector) -> EtabSiren<'static> {
        EtabSiren { etab_type: Some(etab_type), sector: Some(sector), commune_code: Some("94034"), commune_siren: None }
    }

    #[test]
    fn a_public_ecole_holds_its_communes_siren_only() {
        let ecole = etab(EtabType::EcoleElementaire, Sector::Public);
        assert!(ecole.takes_its_communes());
        assert!(ecole.holds_as_public_body("219400348"));
        assert!(!ecole.holds_as_public_body("200000008"), "a vendor's");
        assert!(!ecole.holds_as_public_body("219400389"), "another commune's");
        let nouvelle = EtabSiren { commune_siren: Some("200054781"), ..ecole };
        assert!(nouvelle.holds_as_public_body("200054781"), "the commune's of record");
        assert!(nouvelle.holds_as_public_body("219400348"));
    }

    #[test]
    fn an_eple_holds_a_public_siren_and_a_private_school_none() {
        let college = etab(EtabType::College, Sector::Public);
        assert!(!college.takes_its_communes());
        assert!(college.holds_as_public_body("199400012"));
        assert!(!college.holds_as_public_body("200000008"));
        let private = etab(EtabType::EcolePrimaire, Sector::Prive);
        assert!(!private.takes_its_communes());
        assert!(!private.holds_as_public_body("219400348"));
        assert!(!etab(EtabType::Lycee, Sector::Prive).holds_as_public_body("199400012"));
    }

    #[test]
    fn the_numbering_refuses_a_public_eple_a_siren_not_from_1_and_a_private_school_the_public_ranges() {
        let public = |t| etab(t, Sector::Public).numbering_refusal("219400348").is_some();
        for t in [EtabType::College, EtabType::Lycee, EtabType::LyceeProfessionnel, EtabType::Erea] {
            assert!(public(t), "{t:?}");
            assert!(etab(t, Sector::Public).numbering_refusal("775688732").is_some(), "{t:?}: an association's");
            assert_eq!(etab(t, Sector::Public).numbering_refusal("199400012"), None, "{t:?}");
        }
        assert!(!public(EtabType::EcolePrimaire), "a public école's is checked against its commune's");
        for t in [EtabType::EcolePrimaire, EtabType::College, EtabType::Lycee] {
            let private = etab(t, Sector::Prive);
            assert!(private.numbering_refusal("199400012").is_some(), "{t:?}");
            assert!(private.numbering_refusal("219400348").is_some(), "{t:?}");
            assert_eq!(private.numbering_refusal("775688732"), None, "{t:?}: its association's");
            assert_eq!(private.numbering_refusal("300000008"), None, "{t:?}: its company's");
        }
    }
}
