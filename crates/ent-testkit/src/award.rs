//! The facts of an awarded market, for the groupement bench and tests.

use serde_json::{json, Value};

/// The DECP facts of an award (`decp` of `POST /groupements/{id}/award`) by the
/// coordinator's establishment `buyer_siret`, every field given. A procédure adaptée, for a
/// groupement created with the `procedure` `procedure_adaptee` (the DECP declares the pieces'
/// procedure): no minimum délai but its offers deadline between the launch of the consultation
/// and the notification (the day after that deadline at the earliest); its prices those of the
/// AE and the BPU (révisables, unitaires); an accord-cadre à bons de commande under the CCAG-TIC
/// (RC art. 4, CCAP art. 2 and 3); no advance (the titulaire renounced it: an award body
/// says `"advance_renounced": true`).
pub fn decp_facts(buyer_siret: &str) -> Value {
    json!({
        "acheteur_siret": buyer_siret, "code_cpv": "48190000", "techniques": ["Accord-cadre"],
        "modalites_execution": ["Bons de commande"], "marche_innovant": false, "ccag": "Techniques de l'information et de la communication",
        "offres_recues": 2, "attribution_avance": false, "type_groupement_operateurs": "Pas de groupement",
        "sous_traitance_declaree": false, "procedure": "Procédure adaptée", "forme_prix": "Unitaire",
        "types_prix": ["Définitif révisable"], "considerations_sociales": ["Pas de considération sociale"],
        "considerations_environnementales": ["Pas de considération environnementale"],
        "lieu_execution_code": "FR", "lieu_execution_type": "Code pays"
    })
}
