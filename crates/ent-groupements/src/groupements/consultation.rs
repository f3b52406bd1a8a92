//! The figures of the règlement de la consultation (RC) and of the acte d'engagement (AE) that
//! the groupement's terms do not carry: named defaults, written into every RC and AE, that the
//! coordinator may amend in the exported ODT before publication (the README's « Documents d'un
//! groupement » lists them). The procedure is the open call for tenders the convention
//! constitutive's commission d'appel d'offres presupposes; the groupement holds no estimated
//! amount that would place it below the thresholds.

use serde_json::json;

/// An award criterion (article R. 2152-7 du code de la commande publique) and its weight, in
/// points out of 100; a technical criterion's sub-criteria, each with its points.
pub struct Criterion {
    pub label: &'static str,
    pub points: u32,
    pub sub_criteria: &'static [(&'static str, u32)],
}

/// The award criteria, in decreasing weight: technical value judged on the mémoire technique,
/// then price judged on the DQE's total (the BPU's unit prices × the DQE's quantities).
pub const CRITERIA: &[Criterion] = &[
    Criterion {
        label: "Valeur technique, appréciée au vu du mémoire technique",
        points: 60,
        sub_criteria: &[
            ("adéquation de la solution aux besoins du CCTP et au SDET (services, ergonomie, accessibilité)", 20),
            ("hébergement, sécurité et protection des données à caractère personnel", 15),
            ("assistance, niveaux de service, reprise des données et réversibilité", 15),
            ("formation et accompagnement des utilisateurs", 10),
        ],
    },
    Criterion {
        label: "Prix, apprécié au vu du montant total HT du détail quantitatif estimatif (DQE)",
        points: 40,
        sub_criteria: &[],
    },
];

/// Days an offer binds its candidate, from the deadline for receiving offers.
pub const OFFER_VALIDITY_DAYS: u32 = 120;
/// Last day, before the deadline for offers, on which a candidate may ask a question.
pub const QUESTIONS_DAYS_BEFORE: u32 = 10;
/// Last day, before the deadline for offers, on which the coordinator answers every candidate.
pub const ANSWERS_DAYS_BEFORE: u32 = 6;
// The answers come after the last question.
const _: () = assert!(ANSWERS_DAYS_BEFORE < QUESTIONS_DAYS_BEFORE);
/// The fixed part of the yearly price revision, in percent (the rest follows the index).
pub const REVISION_FIXED_PERCENT: u32 = 15;
/// The index of the price revision: the one the IT services sector publishes.
pub const REVISION_INDEX: &str = "indice Syntec";

/// The RC's and AE's variables: the criteria and the defaults above.
pub fn context() -> serde_json::Value {
    let criteria: Vec<_> = CRITERIA
        .iter()
        .map(|c| {
            let subs: Vec<_> =
                c.sub_criteria.iter().map(|(label, points)| json!({ "label": label, "points": points })).collect();
            json!({ "label": c.label, "points": c.points, "sub_criteria": subs })
        })
        .collect();
    json!({
        "criteria": criteria,
        "offer_validity_days": OFFER_VALIDITY_DAYS,
        "questions_days_before": QUESTIONS_DAYS_BEFORE,
        "answers_days_before": ANSWERS_DAYS_BEFORE,
        "revision_fixed": format!("0,{:02}", REVISION_FIXED_PERCENT),
        "revision_indexed": format!("0,{:02}", 100 - REVISION_FIXED_PERCENT),
        "revision_index": REVISION_INDEX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_criteria_weigh_100_points_and_each_sums_its_sub_criteria() {
        assert_eq!(CRITERIA.iter().map(|c| c.points).sum::<u32>(), 100);
        for c in CRITERIA.iter().filter(|c| !c.sub_criteria.is_empty()) {
            assert_eq!(c.sub_criteria.iter().map(|(_, p)| p).sum::<u32>(), c.points, "{}", c.label);
        }
    }

    #[test]
    fn the_revision_formula_parts_add_up_to_one() {
        let c = context();
        assert_eq!((c["revision_fixed"].as_str(), c["revision_indexed"].as_str()), (Some("0,15"), Some("0,85")));
    }
}
