//! The CCTP's figures that the groupement's terms do not carry, and the advance and the penalties
//! of the CCAP (its articles 7 and 10): named defaults, written into every CCTP and CCAP, that the coordinator may amend in the exported ODT before publication (the
//! README's « Documents d'un groupement » lists them).

use super::Groupement;
use ent_conventions::conventions::model::SDET_VERSION;
use serde_json::json;

/// Monthly availability of the service, in percent, planned maintenance excluded.
pub const AVAILABILITY_PERCENT: &str = "99,5";
/// Notice of a planned maintenance, in business days.
pub const MAINTENANCE_NOTICE_DAYS: u32 = 5;
/// Recovery point objective: data lost at most, in hours (one backup a day at least).
pub const RPO_HOURS: u32 = 24;
/// Days backups are kept, in a second EU data centre.
pub const BACKUP_RETENTION_DAYS: u32 = 30;
/// Penalty per business hour of delay beyond a P1 or P2 resolution target, in euros HT.
pub const PENALTY_P1_P2_PER_HOUR_EUROS: u32 = 150;
/// Penalty per business day of delay beyond a P3 or P4 resolution target, in euros HT.
pub const PENALTY_P3_P4_PER_DAY_EUROS: u32 = 100;
/// Penalty per started tenth of a point of monthly availability below the target, in percent of
/// the month's subscriptions.
pub const PENALTY_AVAILABILITY_PERCENT: u32 = 2;
/// Ceiling of all penalties, in percent of the contract's yearly amount.
pub const PENALTY_CEILING_PERCENT: u32 = 10;
/// The advance on a bon de commande, in percent of its amount TTC (of twelve times its amount
/// over its duration in months beyond twelve months): the CCAP's article 7. At least every minimum
/// of article R. 2191-7 du code de la commande publique for a member (never the State), that for
/// a small or medium-sized titulaire included (10 % for the largest collectivités).
pub const ADVANCE_PERCENT: u32 = 10;
/// Hours of training per école in its set-up (price line « mise en service »).
pub const TRAINING_HOURS_PER_SCHOOL: u32 = 3;
/// The vendor's business hours, those of the `editeur` calendar of `support/policies.yaml`.
pub const BUSINESS_HOURS: &str = "du lundi au vendredi, de 9 h à 18 h (heure de Paris), hors jours fériés";

/// The CCTP's own variables: lot justification, SDET annex, P1 target (none stated for a
/// groupement recorded before P1 was required) and the defaults above.
pub fn context(g: &Groupement) -> serde_json::Value {
    let p1 = g.terms.support.iter().find(|s| s.priority == "P1");
    json!({
        "several_lots": g.terms.lots.len() > 1,
        "sdet_version": SDET_VERSION,
        "p1_resolution_hours": p1.map(|s| s.resolution_hours),
        "availability_percent": AVAILABILITY_PERCENT,
        "maintenance_notice_days": MAINTENANCE_NOTICE_DAYS,
        "rpo_hours": RPO_HOURS,
        "backup_retention_days": BACKUP_RETENTION_DAYS,
        "penalty_p1_p2_per_hour": PENALTY_P1_P2_PER_HOUR_EUROS,
        "penalty_p3_p4_per_day": PENALTY_P3_P4_PER_DAY_EUROS,
        "penalty_availability_percent": PENALTY_AVAILABILITY_PERCENT,
        "penalty_ceiling_percent": PENALTY_CEILING_PERCENT,
        "advance_percent": ADVANCE_PERCENT,
        "training_hours_per_school": TRAINING_HOURS_PER_SCHOOL,
        "business_hours": BUSINESS_HOURS,
    })
}
