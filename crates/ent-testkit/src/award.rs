//! The facts of an awarded market, for the groupement bench and tests.

use serde_json::{json, Value};

/// The DECP facts of an award (`decp` of `POST /groupements/{id}/award`) by the
/// coordinator's establishment `buyer_siret`, every field given.
pub fn decp_facts(buyer_siret: &str) -> Value {
    json!({
        "acheteur_siret": buyer_siret, "code_cpv": "48190000", "techniques": ["Sans objet"],
        "modalites_execution": ["Bons de commande"], "marche_innovant": false, "ccag": "Pas de CCAG",
        "offres_recues": 2, "attribution_avance": false, "type_groupement_operateurs": "Pas de groupement",
        "sous_traitance_declaree": false, "procedure": "Procédure adaptée", "forme_prix": "Forfaitaire",
        "types_prix": ["Définitif ferme"], "considerations_sociales": ["Pas de considération sociale"],
        "considerations_environnementales": ["Pas de considération environnementale"],
        "lieu_execution_code": "FR", "lieu_execution_type": "Code pays"
    })
}
